#!/usr/bin/env python3
# Prints (id, digest, folder) of every catalogue entry: SHA-256 of the assembled spec's JSON, as
# AssessmentSpec::digest computes it (serde_json, fields in declaration order). For updating the pins
# in domain/tests/catalogue_digests.rs without a cargo build; the Rust test stays the authority.
import json,hashlib,sys,os
root=sys.argv[1] if len(sys.argv)>1 else 'catalogue'
lib=json.load(open(f'{root}/library.json'))
for slug in lib:
    m=json.load(open(f'{root}/{slug}/assessment.json'))
    rub=json.load(open(f'{root}/{slug}/rubric.json'))
    tasks=[]
    for t in m['tasks']:
        tasks.append({'title':t['title'],'prompt':open(f'{root}/{slug}/{t["prompt"]}').read(),
          'starter_files':[{'path':p,'content':open(f'{root}/{slug}/starter/{p}').read()} for p in t['starter_files']]})
    crit=[{'key':c['key'],'name':c['name'],'weight':c['weight'],'levels':[{'score':l['score'],'descriptor':l['descriptor']} for l in c['levels']]} for c in rub['criteria']]
    ip=m['integrity_policy']
    spec={'title':m['title'],'kind':m['kind'],'difficulty':m['difficulty'],'best_for':m['best_for'],'format':m['format'],
      'time_limit_minutes':m['time_limit_minutes'],'tasks':tasks,'rubric':{'criteria':crit},
      'integrity_policy':{k:ip[k] for k in ['keystroke_dynamics','paste_tracking','focus_tracking','face_continuity','similarity']}}
    b=json.dumps(spec,ensure_ascii=False,separators=(',',':')).encode()
    print(m['id'], hashlib.sha256(b).hexdigest(), slug)
