// "Data held back" (docs/decisions/0017-poison-records.md): while records of a session are
// quarantined, the replay and report pages say so in words, next to what they show, so that
// nobody reads an incomplete session as the whole of it. The API's `held_back` object carries a
// sentence for people (`notice`) and the counts by part; never the records themselves.

const PARTS = {
  sessions: 'the session, its log and report',
  replay: 'the replay',
  relay: 'not yet published, so in no view',
};
const KINDS = {
  unappliable: 'refused by the database',
  undecodable: 'not readable by this version',
  unpublishable: 'refused by the broker',
  held: 'waiting behind one of those, to keep the session in order',
};

/** Shows `heldBack` (the API's `held_back`, or undefined) in the `box` element, or hides it. */
export function renderHeldBack(box, heldBack) {
  if (!heldBack || typeof heldBack !== 'object') {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const title = document.createElement('h2');
  title.textContent = 'Data held back';
  const notice = document.createElement('p');
  notice.dataset.testid = 'held-back-notice';
  notice.textContent = String(heldBack.notice || '');
  const parts = document.createElement('ul');
  for (const p of Array.isArray(heldBack.by_part) ? heldBack.by_part : []) {
    const li = document.createElement('li');
    const n = Number(p.records) || 0;
    li.textContent = `${n} record${n === 1 ? '' : 's'}: ${PARTS[p.part] || p.part}; ${KINDS[p.kind] || p.kind}`;
    parts.append(li);
  }
  box.replaceChildren(title, notice, parts);
  box.hidden = false;
}
