#!/usr/bin/env python3
"""Hidden grader for database-schema-optimization (Cartwheel order history).

Builds two databases from the grader's own copies of schema.sql and seed.sql (scale 1 with a salt
the candidate never saw): `base` stays as the starter schema, `cand` gets the candidate's
migration.sql (twice). The candidate's queries.sql (three prepared statements, names and
parameter types fixed by the starter) is compared with the original statements: same rows, plans
that no longer read the big tables, cost independent of page depth, faster than the originals on
`base` measured in the same run (interleaved, best of several), and the migration's safety.

Every check is always reported; candidate SQL that fails or runs away fails the checks that
depend on it with the error. Writes $CLARITY_RESULTS, exits 0.
"""
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.getcwd()
RESULTS = os.environ.get("CLARITY_RESULTS", "/results/results.json")
# Scale 1: the sandbox limits a file to 64 MB, so no table may outgrow one 64 MB segment.
SCALE = int(os.environ.get("GRADER_SCALE", "1"))
SALT = 7
BIG_TABLES = ["customers", "merchants", "products", "orders", "order_items"]
STATEMENT_TIMEOUT_MS = 10000
MIGRATION_TIMEOUT_S = 40
PAGE = 20

# key -> (name, weight, gated on "the migration changes the schema")
CHECKS = [
    ("queries_load", "queries.sql defines my_orders(bigint, timestamptz, bigint), merchant_revenue(bigint) and customer_by_email(text)", 1, False),
    ("migration_applies", "migration.sql applies cleanly to the seeded database (psql, ON_ERROR_STOP) and changes the schema", 2, True),
    ("migration_rerunnable", "Running migration.sql a second time succeeds and changes nothing", 2, True),
    ("no_invalid_indexes", "No INVALID index is left after the migration", 1, True),
    ("concurrent_index_builds", "Indexes on the existing tables are built with CREATE INDEX CONCURRENTLY (no write-blocking build)", 2, True),
    ("lock_timeout_set", "lock_timeout is set before the migration takes a table lock on a live table (ALTER TABLE, CREATE TRIGGER, plain DROP INDEX)", 1, True),
    ("no_redundant_indexes", "No index duplicates another or is a leading prefix of another on the same table", 2, True),
    ("indexes_earn_keep", "Every index the migration adds is used by at least one of the three statements' plans", 1, True),
    ("schema_compatible", "Every original column keeps its type and nullability (old application versions keep working)", 1, False),
    ("constraints_kept", "Primary keys, foreign keys, CHECK and unique constraints of the original schema are all still enforced", 2, False),
    ("no_table_rewrite", "No existing table is rewritten (no ALTER COLUMN TYPE, VACUUM FULL, CLUSTER or volatile default)", 2, False),
    ("data_intact", "The migration changes no existing data (row counts and checksums of the original columns)", 1, False),
    ("my_orders_results", "my_orders returns the original statement's rows, 20 per page, ordered by created_at DESC, id DESC, ties included, from any cursor", 2, False),
    ("my_orders_first_page_plan", "my_orders, first page of a customer with thousands of orders: no sequential scan of orders, at most 60 orders rows read", 2, False),
    ("my_orders_deep_page_plan", "my_orders, a page ~90 pages deep in the reseller's history costs about what page 1 costs (orders rows read and buffers)", 4, False),
    ("my_orders_faster", "my_orders is at least 3x faster than the original OFFSET statement, on page 1 and on a deep page", 2, False),
    ("merchant_revenue_results", "merchant_revenue returns the original statement's days, revenue and order counts", 2, False),
    ("merchant_revenue_plan", "merchant_revenue for the large merchant: no sequential scan of order_items or orders, at most 10% of the original's order_items rows read", 4, False),
    ("merchant_revenue_faster", "merchant_revenue for the large merchant is at least 3x faster than the original", 2, False),
    ("customer_by_email_results", "customer_by_email returns the original statement's rows (case-insensitive, duplicates in case included)", 2, False),
    ("customer_by_email_plan", "customer_by_email: no sequential scan of customers, at most 10 customers rows read", 3, False),
    ("customer_by_email_faster", "customer_by_email is at least 3x faster than the original", 1, False),
]

results = {key: {"key": key, "name": name, "weight": weight, "passed": False,
                 "message": "not run: an earlier step failed", "duration_ms": 0}
           for key, name, weight, _ in CHECKS}
GATED = [key for key, _, _, gated in CHECKS if gated]
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def record(key, passed, message="", started=None):
    r = results[key]
    r["passed"] = bool(passed)
    r["message"] = message if message else ("ok" if passed else "failed")
    if started is not None:
        r["duration_ms"] = int((time.monotonic() - started) * 1000)
    log(f"{'PASS' if passed else 'FAIL'} {key}: {r['message']}")


def write_results():
    os.makedirs(os.path.dirname(RESULTS) or ".", exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump({"tests": [results[k] for k, _, _, _ in CHECKS]}, f, indent=1)


def short(text, n=300):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------------------------------------
# psql

def pg_env(options=""):
    env = dict(os.environ)
    env["PGOPTIONS"] = (f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c jit=off "
                        f"-c plan_cache_mode=force_custom_plan -c lc_messages=C {options}").strip()
    env.setdefault("PGHOST", "/tmp")
    env.setdefault("PGUSER", "clarity")
    return env


def psql_file(db, path, variables=None, timeout=60, options=""):
    """Runs a file with psql (autocommit, ON_ERROR_STOP). Returns (ok, error text, seconds)."""
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db]
    for k, v in (variables or {}).items():
        cmd += ["-v", f"{k}={v}"]
    cmd += ["-f", path]
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, env=pg_env(options), cwd=os.path.dirname(path) or ".")
    except subprocess.TimeoutExpired:
        return False, f"did not finish within {timeout} s", time.monotonic() - start
    errors = [l for l in p.stderr.splitlines() if re.search(r"\b(ERROR|FATAL|PANIC):", l)]
    err = "; ".join(errors[:2]) if errors else p.stderr.strip()[-300:]
    return p.returncode == 0, err, time.monotonic() - start


class SqlError(Exception):
    pass


class Session:
    """One interactive psql process: session state (prepared statements) survives between calls."""
    ERR = re.compile(r"^(?:psql:[^:]*:\d+: )?(ERROR|FATAL|PANIC):\s+(.*)$")
    NOISE = re.compile(r"^(?:psql:[^:]*:\d+: )?(NOTICE|WARNING|INFO|DETAIL|HINT|CONTEXT|LINE \d+|DEBUG|LOG):")

    def __init__(self, db, options=""):
        self.db = db
        self.n = 0
        self.p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=0", "-d", db],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=pg_env(options), bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def run(self, sql, timeout=30):
        """Returns the output lines; raises SqlError with the first error."""
        if self.p.poll() is not None:
            raise SqlError("the database session has ended")
        self.n += 1
        marker = f"__clarity_done_{self.n}__"
        try:
            self.p.stdin.write(sql.rstrip() + "\n\\echo " + marker + "\n")
            self.p.stdin.flush()
        except OSError:
            raise SqlError("the database session has ended")
        lines, errors = [], []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.q.get(timeout=max(left, 0.01))
            except queue.Empty:
                self.close()
                raise SqlError(f"no answer within {timeout} s")
            if line is None:
                raise SqlError("the database session ended: " + "; ".join(errors or lines[-2:]))
            if line == marker:
                break
            m = self.ERR.match(line)
            if m:
                errors.append(m.group(2))
            elif not self.NOISE.match(line) and not line.startswith("psql:"):
                lines.append(line)
        if errors:
            raise SqlError(errors[0])
        return lines

    def rows(self, sql, timeout=30):
        return [tuple(l.split("\x1f")) for l in self.run(sql, timeout) if l != ""]

    def value(self, sql, timeout=30):
        r = self.rows(sql, timeout)
        return r[0][0] if r else None

    def close(self):
        try:
            self.p.kill()
        except OSError:
            pass


def lit(s):
    return "NULL" if s is None else "'" + str(s).replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# plans

def explain(session, execute, timing=True, timeout=30):
    opts = "ANALYZE, BUFFERS, FORMAT JSON" + ("" if timing else ", TIMING OFF")
    text = "\n".join(session.run(f"EXPLAIN ({opts}) {execute};", timeout))
    return json.loads(text)[0]


def nodes(plan):
    stack = [plan["Plan"] if "Plan" in plan else plan]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.get("Plans", []))


def rows_read(plan, relation):
    total = 0.0
    for n in nodes(plan):
        if n.get("Relation Name") == relation and "Scan" in n["Node Type"]:
            loops = n.get("Actual Loops", 1)
            total += (n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0)
                      + n.get("Rows Removed by Index Recheck", 0)) * loops
    return int(round(total))


def seq_scans(plan, relation):
    return [n for n in nodes(plan) if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == relation]


def buffers(plan):
    p = plan["Plan"]
    return p.get("Shared Hit Blocks", 0) + p.get("Shared Read Blocks", 0)


def index_names(plan):
    return {n["Index Name"] for n in nodes(plan) if "Index Name" in n}


def plan_shape(plan):
    out = []
    for n in nodes(plan):
        rel = n.get("Relation Name") or n.get("Index Name")
        out.append(n["Node Type"] + (f" on {rel}" if rel else ""))
    return " > ".join(out[:6]) + (" > …" if len(out) > 6 else "")


# ---------------------------------------------------------------------------------------------
# catalogue snapshots

def catalogue(s):
    snap = {}
    snap["columns"] = s.rows("""
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 2;""")
    snap["constraints"] = s.rows("""
        SELECT c.relname, k.contype::text, pg_get_constraintdef(k.oid), k.convalidated::text, k.conname
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' ORDER BY 1, 2, 3, 5;""")
    snap["indexes"] = s.rows("""
        SELECT c.relname, i.relname, pg_get_indexdef(x.indexrelid), x.indisvalid::text, x.indisunique::text
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1, 2;""")
    snap["relfilenodes"] = s.rows("""
        SELECT relname, relfilenode::text FROM pg_class
        WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1;""")
    snap["triggers"] = s.rows("""
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal ORDER BY 1, 2;""")
    snap["tables"] = s.rows("""
        SELECT relname, relkind::text FROM pg_class WHERE relnamespace = 'public'::regnamespace
        AND relkind IN ('r', 'm', 'v', 'p') ORDER BY 1;""")
    return snap


def index_details(s):
    """Per index on the original tables: (table, name, am, unique, partial, keys, includes)."""
    out = []
    for row in s.rows("""
        SELECT c.relname, i.relname, am.amname, x.indisunique::text, (x.indpred IS NOT NULL)::text,
               x.indnkeyatts, x.indnatts, x.indexrelid::text, x.indoption::text, x.indclass::text,
               x.indcollation::text
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_am am ON am.oid = i.relam
        WHERE c.relnamespace = 'public'::regnamespace AND x.indisvalid ORDER BY 1, 2;"""):
        table, name, am, uniq, partial, nkey, natt, oid, opts, classes, colls = row
        nkey, natt = int(nkey), int(natt)
        cols = [s.value(f"SELECT pg_get_indexdef({oid}, {k}, true);") for k in range(1, natt + 1)]
        opts, classes, colls = opts.split(), classes.split(), colls.split()
        keys = [(cols[k], opts[k] if k < len(opts) else "0", classes[k], colls[k]) for k in range(nkey)]
        out.append(dict(table=table, name=name, am=am, unique=uniq == "true", partial=partial == "true",
                        keys=keys, includes=cols[nkey:]))
    return out


# ---------------------------------------------------------------------------------------------
# static reading of migration.sql

def sql_statements(text):
    """Statements of a psql script with comments, string literals and dollar-quoted bodies
    blanked out; psql meta-command lines dropped."""
    out, buf, i, n = [], [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            buf.append(" ")
            continue
        if c == "'":
            i += 1
            while i < n:
                if text[i] == "'" and text.startswith("''", i):
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    i += 1
            buf.append("''")
            continue
        if c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:])
            if m:
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
                buf.append(" $body$ ")
                continue
        if c == "\\" and (not "".join(buf).strip() or "".join(buf).endswith("\n")):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == ";":
            stmt = " ".join("".join(buf).split())
            if stmt:
                out.append(stmt)
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    stmt = " ".join("".join(buf).split())
    if stmt:
        out.append(stmt)
    return out


TABLE_RE = r"(?:ONLY\s+)?(?:\"?public\"?\.)?\"?(" + "|".join(BIG_TABLES) + r")\"?\b"


def static_checks(text):
    stmts = sql_statements(text)
    plain_builds, locking, lock_timeout_before = [], [], None
    seen_timeout = False
    for s in stmts:
        u = s.upper()
        if re.match(r"^SET\s+(SESSION\s+|LOCAL\s+)?LOCK_TIMEOUT\b", u):
            seen_timeout = True
        m = re.match(r"^CREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?.*?\bON\s+" + TABLE_RE, u, re.I)
        if m and not m.group(2):
            plain_builds.append(s[:120])
        takes_lock = (re.match(r"^ALTER\s+TABLE\s+(IF\s+EXISTS\s+)?" + TABLE_RE, u, re.I)
                      or re.match(r"^CREATE\s+(OR\s+REPLACE\s+)?(CONSTRAINT\s+)?TRIGGER\b.*\bON\s+" + TABLE_RE, u, re.I)
                      or re.match(r"^DROP\s+INDEX\s+(?!CONCURRENTLY)", u)
                      or re.match(r"^(LOCK|TRUNCATE|CLUSTER|REINDEX\s+(TABLE|INDEX)\s+(?!CONCURRENTLY))", u))
        if takes_lock:
            locking.append((s[:100], seen_timeout))
    return plain_builds, locking


# ---------------------------------------------------------------------------------------------
# main steps

def main():
    mig_path = os.path.join(WORK, "migration.sql")
    q_path = os.path.join(WORK, "queries.sql")

    # 1. seeded base database (the grader's own schema and seed)
    admin = Session("postgres")
    for db in ("base", "cand"):
        admin.run(f"DROP DATABASE IF EXISTS {db};")
    admin.run("CREATE DATABASE base;")
    ok, err, secs = psql_file("base", os.path.join(HERE, "schema.sql"), options="-c statement_timeout=0")
    if not ok:
        raise RuntimeError("grader schema failed: " + err)
    ok, err, secs = psql_file("base", os.path.join(HERE, "seed.sql"), {"scale": SCALE, "salt": SALT}, timeout=90,
                                options="-c statement_timeout=0")
    if not ok:
        raise RuntimeError("grader seed failed: " + err)
    log(f"seeded base at scale {SCALE} in {secs:.1f}s")
    admin.run("CREATE DATABASE cand TEMPLATE base;", timeout=60)
    admin.close()

    sb = Session("base")
    before = catalogue(sb)
    base_index_names = {r[1] for r in before["indexes"]}

    # 2. migration, twice
    t = time.monotonic()
    changed = False
    mig_text = None
    if not os.path.isfile(mig_path):
        migration_ok, mig_err = False, "migration.sql is missing"
    else:
        mig_text = open(mig_path, encoding="utf-8", errors="replace").read()
        migration_ok, mig_err, secs = psql_file("cand", mig_path, timeout=MIGRATION_TIMEOUT_S, options="-c statement_timeout=30000")
        log(f"migration ran in {secs:.1f}s")
    sc0 = Session("cand")
    after = catalogue(sc0)
    sc0.close()
    changed = any(before[k] != after[k] for k in ("columns", "constraints", "indexes", "triggers", "tables"))
    gate_msg = None
    if not migration_ok:
        record("migration_applies", False, f"migration.sql failed: {short(mig_err)}", t)
        gate_msg = "not checked: migration.sql did not apply"
    elif not changed:
        record("migration_applies", False, "migration.sql ran but changed nothing in the schema (no index, column, constraint or trigger added or removed)", t)
        gate_msg = "not applicable: migration.sql changes nothing in the schema"
    else:
        added = sorted({r[1] for r in after["indexes"]} - base_index_names)
        dropped = sorted(base_index_names - {r[1] for r in after["indexes"]})
        record("migration_applies", True, f"applied; indexes added: {', '.join(added) or 'none'}; dropped: {', '.join(dropped) or 'none'}", t)
    if gate_msg:
        for key in GATED:
            if key != "migration_applies":
                results[key]["message"] = gate_msg

    if migration_ok and changed:
        t = time.monotonic()
        ok, err, secs = psql_file("cand", mig_path, timeout=MIGRATION_TIMEOUT_S, options="-c statement_timeout=30000")
        sc0 = Session("cand")
        again = catalogue(sc0)
        sc0.close()
        if not ok:
            record("migration_rerunnable", False, f"the second run failed: {short(err)}", t)
        else:
            diffs = [k for k in ("columns", "constraints", "indexes", "triggers", "tables") if again[k] != after[k]]
            record("migration_rerunnable", not diffs,
                   "second run succeeded and changed nothing" if not diffs else f"the second run changed the schema again ({', '.join(diffs)})", t)
            after = again

    # make the candidate database look like a settled production table: flushed, vacuumed, analysed
    sc = Session("cand")
    sc.run("SET statement_timeout = 0;\nCHECKPOINT;\nVACUUM (ANALYZE);\nRESET statement_timeout;", timeout=90)

    # 3. schema checks (cand vs base)
    t = time.monotonic()
    before_cols = {(r[0], r[1]): (r[2], r[3]) for r in before["columns"]}
    after_cols = {(r[0], r[1]): (r[2], r[3]) for r in after["columns"]}
    broken = [f"{t_}.{c} {before_cols[(t_, c)][0]}" + (" (missing)" if (t_, c) not in after_cols else f" is now {after_cols[(t_, c)][0]}{' NOT NULL' if after_cols[(t_, c)][1] == 'true' and before_cols[(t_, c)][1] == 'false' else ''}")
              for (t_, c) in before_cols if after_cols.get((t_, c)) != before_cols[(t_, c)]]
    record("schema_compatible", not broken, "all original columns unchanged" if not broken else "changed: " + "; ".join(broken[:5]), t)

    t = time.monotonic()
    after_cons = {(r[0], r[1], r[2]) for r in after["constraints"]}
    after_unique_idx = {(r[0], re.sub(r"^CREATE UNIQUE INDEX \S+ ON ", "", r[2])) for r in after["indexes"] if r[4] == "true" and r[3] == "true"}
    missing = []
    for r in before["constraints"]:
        if (r[0], r[1], r[2]) in after_cons:
            continue
        missing.append(f"{r[0]}: {r[2]}")
    for r in before["indexes"]:
        if r[4] == "true" and not any(x[0] == r[0] and x[1] == re.sub(r"^CREATE UNIQUE INDEX \S+ ON ", "", r[2]) for x in after_unique_idx):
            missing.append(f"unique index {r[1]}")
    record("constraints_kept", not missing, "all original constraints present" if not missing else "missing: " + "; ".join(missing[:5]), t)

    t = time.monotonic()
    b_nodes = dict((r[0], r[1]) for r in before["relfilenodes"])
    a_nodes = dict((r[0], r[1]) for r in after["relfilenodes"])
    rewritten = [tb for tb in BIG_TABLES if b_nodes.get(tb) != a_nodes.get(tb)]
    record("no_table_rewrite", not rewritten, "no original table rewritten" if not rewritten else "rewritten (a full copy under an ACCESS EXCLUSIVE lock): " + ", ".join(rewritten), t)

    t = time.monotonic()
    checksum_sql = """
        SELECT 'customers', count(*), sum(hashtext(id || email || full_name || country_code || created_at)) FROM customers
        UNION ALL SELECT 'merchants', count(*), sum(hashtext(id || name || plan || created_at)) FROM merchants
        UNION ALL SELECT 'products', count(*), sum(hashtext(id || '/' || merchant_id || sku || title || unit_price || active || created_at)) FROM products
        UNION ALL SELECT 'orders', count(*), sum(hashtext(id || '/' || customer_id || status || total_amount || currency || shipping_address::text || created_at || updated_at)) FROM orders
        UNION ALL SELECT 'order_items', count(*), sum(hashtext(order_id || '/' || line_no || '/' || product_id || '/' || quantity || '/' || unit_price)) FROM order_items;"""
    try:
        unlimited = "SET statement_timeout = 0;\n"
        cb, ca = sb.rows(unlimited + checksum_sql, 60), sc.rows(unlimited + checksum_sql, 60)
        sb.run("RESET statement_timeout;")
        sc.run("RESET statement_timeout;")
        diff = [a[0] for a, b in zip(ca, cb) if a != b]
        record("data_intact", not diff, "row counts and checksums unchanged" if not diff else "data changed in: " + ", ".join(diff), t)
    except SqlError as e:
        record("data_intact", False, f"could not read the tables: {short(e)}", t)

    if migration_ok and changed:
        t = time.monotonic()
        invalid = [r[1] for r in after["indexes"] if r[3] != "true"]
        record("no_invalid_indexes", not invalid, "all indexes valid" if not invalid else "INVALID (a failed CONCURRENTLY build left behind): " + ", ".join(invalid), t)

        t = time.monotonic()
        plain, locking = static_checks(mig_text)
        builds = [s for s in sql_statements(mig_text) if re.match(r"^CREATE\s+(UNIQUE\s+)?INDEX\b.*?\bON\s+" + TABLE_RE, s, re.I)]
        if plain:
            record("concurrent_index_builds", False, "built without CONCURRENTLY (blocks writes for the whole build): " + " | ".join(plain[:3]), t)
        elif not builds:
            record("concurrent_index_builds", False, "migration.sql builds no index on the existing tables", t)
        else:
            record("concurrent_index_builds", True, f"{len(builds)} index build(s), all CONCURRENTLY", t)

        t = time.monotonic()
        unguarded = [s for s, guarded in locking if not guarded]
        record("lock_timeout_set", not unguarded,
               (f"lock_timeout set before all {len(locking)} locking statement(s)" if locking else "no statement takes a blocking table lock")
               if not unguarded else "no lock_timeout before: " + " | ".join(unguarded[:3]), t)

        t = time.monotonic()
        try:
            idx = index_details(sc)
            redundant = []
            for a in idx:
                for b in idx:
                    if a is b or a["table"] != b["table"] or a["am"] != b["am"] or a["partial"] or b["partial"]:
                        continue
                    ka = [k[0] for k in a["keys"]] if len(a["keys"]) == 1 else a["keys"]
                    kb = [k[0] for k in b["keys"][:len(a["keys"])]] if len(a["keys"]) == 1 else b["keys"][:len(a["keys"])]
                    if ka != kb or (a["unique"] and not (b["unique"] and len(a["keys"]) == len(b["keys"]))):
                        continue
                    covered = set(k[0] for k in b["keys"]) | set(b["includes"])
                    if not set(a["includes"]) <= covered:
                        continue
                    if len(a["keys"]) == len(b["keys"]) and a["name"] > b["name"] and set(a["includes"]) == set(b["includes"]):
                        continue  # exact duplicates: report once
                    redundant.append(f"{a['name']} (covered by {b['name']})")
            record("no_redundant_indexes", not redundant, "no duplicate or prefix indexes" if not redundant else "redundant: " + ", ".join(redundant), t)
        except SqlError as e:
            record("no_redundant_indexes", False, f"could not read the indexes: {short(e)}", t)

    # 4. the statements
    orig_sql = open(os.path.join(HERE, "originals.sql"), encoding="utf-8").read()
    sb.run(orig_sql)
    t = time.monotonic()
    loaded = False
    prepared = set()
    if not os.path.isfile(q_path):
        record("queries_load", False, "queries.sql is missing", t)
    else:
        try:
            sc.run(orig_sql)
            sc.run("\\set ON_ERROR_ROLLBACK on\nBEGIN;")
            qerr = None
            try:
                sc.run(f"\\i {q_path}")
            except SqlError as e:
                qerr = e
            sc.run("ROLLBACK;\n\\set ON_ERROR_ROLLBACK off")
            sc.run("RESET ALL;")
            got = dict(sc.rows("SELECT name, parameter_types::text FROM pg_prepared_statements;"))
            want = {"my_orders": "{bigint,\"timestamp with time zone\",bigint}", "merchant_revenue": "{bigint}", "customer_by_email": "{text}"}
            bad = [f"{n}{'(missing)' if n not in got else ' has parameters ' + got[n]}" for n in want if got.get(n) != want[n]]
            prepared = {n for n in want if got.get(n) == want[n]}
            if bad:
                msg = "; ".join(bad) + (f"; first error in queries.sql: {short(qerr)}" if qerr else "")
                record("queries_load", False, msg, t)
            else:
                loaded = True
                record("queries_load", True, "three statements prepared" + (f" (queries.sql also raised: {short(qerr, 120)})" if qerr else ""), t)
        except SqlError as e:
            record("queries_load", False, f"loading queries.sql failed: {short(e)}", t)
    for name in ("my_orders", "merchant_revenue", "customer_by_email"):
        if name not in prepared:
            for key in results:
                if key.startswith(name):
                    results[key]["message"] = f"not run: queries.sql does not prepare {name} with the starter's parameters ({results['queries_load']['message']})"

    used_indexes = set()
    timings = {}
    if "my_orders" in prepared:
        check_my_orders(sb, sc, used_indexes, timings)
    if "merchant_revenue" in prepared:
        check_merchant_revenue(sb, sc, used_indexes, timings)
    if "customer_by_email" in prepared:
        check_customer_by_email(sb, sc, used_indexes, timings)
    if prepared:
        measure(sb, sc, timings)

    if migration_ok and changed:
        t = time.monotonic()
        added = sorted({r[1] for r in after["indexes"] if r[0] in BIG_TABLES} - base_index_names)
        unused = [i for i in added if i not in used_indexes]
        if not loaded:
            record("indexes_earn_keep", False, "not checked: the statements could not be run", t)
        else:
            record("indexes_earn_keep", not unused,
                   (f"each added index is used ({', '.join(added)})" if added else "no index added on the existing tables")
                   if not unused else "added but used by none of the three plans: " + ", ".join(unused), t)
    sb.close()
    sc.close()


def execute_rows(s, stmt, timeout=30):
    return s.rows(f"EXECUTE {stmt};", timeout)


def check_my_orders(sb, sc, used, timings):
    t = time.monotonic()
    try:
        typical = sc.value("""SELECT customer_id FROM orders WHERE customer_id <> 1 AND status <> 'cancelled'
                              GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1;""")
        problems = []
        for cust in ("1", typical):
            sc.run("BEGIN ISOLATION LEVEL REPEATABLE READ;")
            try:
                expected = execute_rows(sc, f"clarity_orig_my_orders_all({cust})")
                n = len(expected)
                # first pages from the start, then cursors inside ties, deep in the list and at the end
                ties = [k for k in range(n - 1) if expected[k][1] == expected[k + 1][1]]
                probes = [None, 19, 39] + ties[len(ties) // 3: len(ties) // 3 + 3] + ties[-3:] + [n - 25, n - 21, n - 20, n - 1]
                seen = set()
                for k in probes:
                    if k is not None and (k < 0 or k >= n or k in seen):
                        continue
                    seen.add(k)
                    if k is None:
                        got = execute_rows(sc, f"my_orders({cust}, NULL, NULL)")
                        want = expected[:PAGE]
                        where = "the first page"
                    else:
                        got = execute_rows(sc, f"my_orders({cust}, {lit(expected[k][1])}, {expected[k][0]})")
                        want = expected[k + 1:k + 1 + PAGE]
                        where = f"the page after order {expected[k][0]} (row {k + 1} of {n}{', inside a group sharing its created_at' if k in ties else ''})"
                    if got != want:
                        problems.append(describe_page_diff(cust, where, got, want))
                        break
            finally:
                sc.run("COMMIT;")
            if problems:
                break
        record("my_orders_results", not problems,
               "pages match the original for the reseller (customer 1) and a typical customer, ties included" if not problems else problems[0], t)
    except SqlError as e:
        record("my_orders_results", False, f"my_orders failed: {short(e)}", t)
        expected = None

    # plans for the reseller: page 1 and a page near the end (scale 1: ~1,800 orders, ~90 pages)
    t = time.monotonic()
    try:
        all_rows = execute_rows(sc, "clarity_orig_my_orders_all(1)")
        depth = min(len(all_rows) - PAGE - 1, 200 * PAGE - 1)
        cur = all_rows[depth]
        timings["my_orders_first"] = ("clarity_orig_my_orders_offset(1, 0)", "my_orders(1, NULL, NULL)")
        timings["my_orders_deep"] = (f"clarity_orig_my_orders_offset(1, {depth + 1})", f"my_orders(1, {lit(cur[1])}, {cur[0]})")
        first = explain(sc, "EXECUTE my_orders(1, NULL, NULL)", timing=False)
        deep = explain(sc, f"EXECUTE my_orders(1, {lit(cur[1])}, {cur[0]})", timing=False)
        used.update(index_names(first) | index_names(deep))
        r1, rd = rows_read(first, "orders"), rows_read(deep, "orders")
        b1, bd = buffers(first), buffers(deep)
        ss = seq_scans(first, "orders")
        ok1 = not ss and r1 <= 60
        record("my_orders_first_page_plan", ok1,
               f"page 1 reads {r1} orders rows, {b1} buffers ({plan_shape(first)})" if ok1 else
               f"page 1 {'scans orders sequentially, ' if ss else ''}reads {r1} orders rows (at most 60 expected), {b1} buffers: {plan_shape(first)}", t)
        t = time.monotonic()
        okd = not seq_scans(deep, "orders") and rd <= 60 and bd <= 3 * b1 + 30
        record("my_orders_deep_page_plan", okd,
               f"page {depth // PAGE + 2} reads {rd} orders rows and {bd} buffers, page 1 {r1} rows and {b1} buffers" if okd else
               f"page {depth // PAGE + 2} reads {rd} orders rows and {bd} buffers where page 1 reads {r1} rows and {b1} buffers (at most 60 rows, and about page 1's buffers, expected): {plan_shape(deep)}", t)
    except SqlError as e:
        for key in ("my_orders_first_page_plan", "my_orders_deep_page_plan"):
            record(key, False, f"my_orders failed: {short(e)}", t)


def describe_page_diff(cust, where, got, want):
    if not got and want:
        return f"customer {cust}, {where}: returned no rows, expected {len(want)} starting with order {want[0][0]}"
    if len(got) != len(want):
        return f"customer {cust}, {where}: returned {len(got)} rows, expected {len(want)}"
    for g, w in zip(got, want):
        if g != w:
            if g[0] != w[0]:
                return (f"customer {cust}, {where}: order {g[0]} ({g[1]}) where order {w[0]} ({w[1]}) was expected "
                        f"(order: created_at DESC, id DESC; no order skipped or repeated)")
            return f"customer {cust}, {where}: order {g[0]} returned as {'|'.join(g)}, expected {'|'.join(w)}"
    return f"customer {cust}, {where}: rows differ"


def close_rows(got, want):
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if len(g) != len(w) or g[0] != w[0] or g[2] != w[2]:
            return False
        try:
            if abs(float(g[1]) - float(w[1])) > 0.01 + 1e-9 * abs(float(w[1])):
                return False
        except ValueError:
            return False
    return True


def check_merchant_revenue(sb, sc, used, timings):
    t = time.monotonic()
    try:
        mid = sc.value("SELECT merchant_id FROM products WHERE merchant_id > 1 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1;")
        problems = []
        for m in ("1", mid, "987654321"):
            sc.run("BEGIN ISOLATION LEVEL REPEATABLE READ;")
            try:
                want = execute_rows(sc, f"clarity_orig_merchant_revenue({m})")
                got = execute_rows(sc, f"merchant_revenue({m})")
            finally:
                sc.run("COMMIT;")
            if not close_rows(got, want):
                problems.append(f"merchant {m}: returned {len(got)} days ({'; '.join('|'.join(r) for r in got[:2])}…), "
                                f"expected {len(want)} ({'; '.join('|'.join(r) for r in want[:2])}…)")
                break
        record("merchant_revenue_results", not problems,
               "same days, revenue (to the penny) and order counts for the large merchant, a mid-size one and an unknown one" if not problems else problems[0], t)
    except SqlError as e:
        record("merchant_revenue_results", False, f"merchant_revenue failed: {short(e)}", t)

    t = time.monotonic()
    try:
        timings["merchant_revenue"] = ("clarity_orig_merchant_revenue(1)", "merchant_revenue(1)")
        base = explain(sb, "EXECUTE clarity_orig_merchant_revenue(1)", timing=False)
        cand = explain(sc, "EXECUTE merchant_revenue(1)", timing=False)
        used.update(index_names(cand))
        rb, rc = rows_read(base, "order_items"), rows_read(cand, "order_items")
        seqs = [r for r in ("order_items", "orders") if seq_scans(cand, r)]
        ok = not seqs and rc <= 0.10 * rb
        record("merchant_revenue_plan", ok,
               f"reads {rc} order_items rows where the original reads {rb} ({plan_shape(cand)})" if ok else
               f"{'sequential scan of ' + ', '.join(seqs) + '; ' if seqs else ''}reads {rc} order_items rows where the original reads {rb} (at most 10% expected): {plan_shape(cand)}", t)
    except SqlError as e:
        record("merchant_revenue_plan", False, f"merchant_revenue failed: {short(e)}", t)


def check_customer_by_email(sb, sc, used, timings):
    t = time.monotonic()
    try:
        dup = sc.value("SELECT min(email) FROM customers GROUP BY lower(email) HAVING count(*) > 1 ORDER BY 1 LIMIT 1;")
        mixed = sc.value("SELECT email FROM customers WHERE email <> lower(email) AND id < 1000 ORDER BY id LIMIT 1;")
        plain = sc.value("SELECT email FROM customers WHERE email = lower(email) AND id > 100 ORDER BY id LIMIT 1;")
        probes = [dup.lower(), mixed.lower(), plain.upper(), "Nobody.Here@Example.Com"]
        problems = []
        for e in probes:
            want = sorted(execute_rows(sc, f"clarity_orig_customer_by_email({lit(e)})"))
            got = sorted(execute_rows(sc, f"customer_by_email({lit(e)})"))
            if got != want:
                problems.append(f"for {e!r}: returned {got[:3]}, expected {want[:3]}")
                break
        record("customer_by_email_results", not problems,
               "same rows for a mixed-case address, a case duplicate, an upper-cased address and an unknown one" if not problems else problems[0], t)
        timings["customer_by_email"] = (f"clarity_orig_customer_by_email({lit(plain.upper())})", f"customer_by_email({lit(plain.upper())})")
    except (SqlError, AttributeError) as e:
        record("customer_by_email_results", False, f"customer_by_email failed: {short(e)}", t)
        return

    t = time.monotonic()
    try:
        cand = explain(sc, f"EXECUTE {timings['customer_by_email'][1]}", timing=False)
        used.update(index_names(cand))
        r = rows_read(cand, "customers")
        ss = seq_scans(cand, "customers")
        ok = not ss and r <= 10
        record("customer_by_email_plan", ok, f"reads {r} customers rows ({plan_shape(cand)})" if ok else
               f"{'sequential scan of customers; ' if ss else ''}reads {r} customers rows (at most 10 expected): {plan_shape(cand)}", t)
    except SqlError as e:
        record("customer_by_email_plan", False, f"customer_by_email failed: {short(e)}", t)


def measure(sb, sc, timings):
    """Best of several runs, original (base) and candidate (cand) interleaved, so that a loaded
    machine slows both alike; a candidate time under 1 ms passes whatever the ratio."""
    for keys, check in ((("my_orders_first", "my_orders_deep"), "my_orders_faster"),
                        (("merchant_revenue",), "merchant_revenue_faster"),
                        (("customer_by_email",), "customer_by_email_faster")):
        t = time.monotonic()
        if any(k not in timings for k in keys):
            if not results[check]["message"].startswith("not run"):
                record(check, False, "not measured: the statement failed above", t)
            continue
        try:
            parts, ok = [], True
            for key in keys:
                orig, cand = timings[key]
                bt, ct = [], []
                rounds = 5
                for i in range(rounds + 1):
                    b = explain(sb, f"EXECUTE {orig}", timing=False)["Execution Time"]
                    c = explain(sc, f"EXECUTE {cand}", timing=False)["Execution Time"]
                    if i:  # the first round warms the caches
                        bt.append(b)
                        ct.append(c)
                b, c = min(bt), min(ct)
                ratio = b / max(c, 1e-3)
                ok = ok and (ratio >= 3 or c <= 1.0)
                label = {"my_orders_first": "page 1: ", "my_orders_deep": "deep page: "}.get(key, "")
                parts.append(f"{label}{c:.2f} ms against the original's {b:.2f} ms ({ratio:.1f}x)")
            record(check, ok, "; ".join(parts) + f" (best of {rounds}" + ("" if ok else "; 3x faster or under 1 ms expected") + ")", t)
        except SqlError as e:
            record(check, False, f"timing run failed: {short(e)}", t)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the grader itself failed: every check not yet decided says why
        import traceback
        traceback.print_exc()
        for r in results.values():
            if r["message"].startswith("not run"):
                r["message"] = f"not run: the grader could not prepare the database ({short(e, 200)})"
    write_results()
    total = sum(r["weight"] for r in results.values())
    got = sum(r["weight"] for r in results.values() if r["passed"])
    log(f"score {got}/{total} = {100 * got / total:.1f}%")
    sys.exit(0)
