import { ConnecError } from './connec/records.js';
import { CONNEC_COLLECTIONS } from './connec/collections.js';
import { decodePathSegments, html, MALFORMED_PATH_MESSAGE, redirect, type SandboxRequest, type SandboxResponse } from './http.js';
import { page } from './idp.js';
import { type Platform, PlatformError } from './platform.js';
import type { JsonObject } from './types.js';
import { escapeHtml, isRecord } from './util.js';

const PAGE = 50;

/** An id as one URL path segment. */
const pathId = encodeURIComponent;

function postButton(action: string, label: string, attrs = ''): string {
  return `<form method="post" action="${escapeHtml(action)}" class="inline"><button type="submit" ${attrs}>${escapeHtml(label)}</button></form>`;
}

function home(platform: Platform): string {
  const m = [...platform.store.marketplaces.values()]
    .map((x) => `<tr><td>${escapeHtml(x.name)}</td><td><code>${escapeHtml(x.apiId)}</code></td><td><code>${escapeHtml(x.apiKey)}</code></td><td><code>${escapeHtml(x.fingerprint)}</code></td></tr>`)
    .join('');
  const env = platform.store.environment;
  return page(
    'Maestrano sandbox',
    `<p>App: <a href="${escapeHtml(platform.options.appUrl)}">${escapeHtml(platform.options.appUrl)}</a>. Developer platform: <code>${escapeHtml(platform.url)}/api/config/v1/marketplaces</code>
 (environment key <code>${escapeHtml(env?.apiKey)}</code>).</p>
<h2>Marketplaces</h2><table><tr><th>Name</th><th>App api id</th><th>App api key</th><th>IdP certificate SHA-1</th></tr>${m}</table>
<p>${platform.store.groups.size} groups, ${platform.store.users.size} users, ${platform.store.records.size} Connec! records.</p>`,
  );
}

function groupsPage(platform: Platform): string {
  const rows = [...platform.store.groups.values()]
    .map(
      (g) =>
        `<tr><td><a href="/ui/groups/${pathId(g.id)}">${escapeHtml(g.id)}</a></td><td>${escapeHtml(g.name)}</td><td>${escapeHtml(g.marketplace)}</td><td>${escapeHtml(g.orgUid)}</td><td>${escapeHtml(g.status)}</td>` +
        `<td><a class="button" href="/launch/${pathId(g.id)}" data-launch="${escapeHtml(g.id)}">Launch app</a> <a href="/ui/groups/${pathId(g.id)}#bills">Bills</a></td></tr>`,
    )
    .join('');
  return page('Groups', `<table><tr><th>Id</th><th>Name</th><th>Marketplace</th><th>Org uid</th><th>Status</th><th></th></tr>${rows}</table>`);
}

function usersPage(platform: Platform): string {
  const rows = [...platform.store.users.values()]
    .map((u) => {
      const groups = platform
        .membershipsOf(u.id)
        .map((m) => `<a href="/ui/groups/${pathId(m.groupId)}">${escapeHtml(m.groupId)}</a> (${escapeHtml(m.role)})`)
        .join(', ');
      return `<tr><td>${escapeHtml(u.id)}</td><td>${escapeHtml(u.name)} ${escapeHtml(u.surname)}</td><td>${escapeHtml(u.email)}</td><td>${groups}</td></tr>`;
    })
    .join('');
  return page('Users', `<table><tr><th>Id</th><th>Name</th><th>Email</th><th>Groups</th></tr>${rows}</table>`);
}

/** The buttons of the group page's Synchronization section: form value, label, action sent. */
const SYNC_BUTTONS = [
  { value: 'start', label: 'Start sync', action: 'start', fullSync: false },
  { value: 'full', label: 'Full sync', action: 'start', fullSync: true },
  { value: 'status', label: 'Sync status', action: 'status', fullSync: false },
  { value: 'toggle', label: 'Toggle sync', action: 'toggle', fullSync: false },
  { value: 'update_metadata', label: 'Update metadata', action: 'update_metadata', fullSync: false },
] as const;

/** The app's answer to a connector control call (a `sync.*` delivery of this group), for the group page. */
function syncAnswer(platform: Platform, groupId: string, deliveryId: string | null): string {
  if (!deliveryId) return '';
  const d = platform.notifier.deliveries.find((x) => x.id === deliveryId && x.kind.startsWith('sync.'));
  if (!d) return '<p class="pending">That call is no longer in the delivery log.</p>';
  const body = d.body === null ? null : (JSON.parse(d.body) as { group_id?: unknown; opts?: { full_sync?: unknown } });
  if (body !== null ? body.group_id !== groupId : !d.url.includes(encodeURIComponent(groupId))) return '';
  const label = d.kind === 'sync.start' && body?.opts?.full_sync === true ? 'Full sync' : (SYNC_BUTTONS.find((b) => `sync.${b.action}` === d.kind)?.label ?? d.kind);
  const attempt = d.attempts[0];
  let answer: string;
  if (!d.response) answer = `<p class="${d.state}">No answer from the app: ${escapeHtml(attempt?.error ?? 'pending')}</p>`;
  else {
    let text = d.response.body;
    try {
      text = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // Not JSON: shown as it came.
    }
    answer = `<p class="${d.state}">The app answered <b id="sync-status">${d.response.status}</b>.</p><pre id="sync-answer">${escapeHtml(text)}</pre>`;
  }
  return `<section aria-labelledby="sync-answer-title"><h3 id="sync-answer-title">${escapeHtml(label)}: <code>${escapeHtml(d.method)} ${escapeHtml(d.url)}</code></h3>${answer}</section>`;
}

function groupPage(platform: Platform, groupId: string, notice: string | null, syncDelivery: string | null = null): string {
  const g = platform.requireGroup(groupId);
  const members = platform
    .membersOf(g.id)
    .map((m) => {
      const u = platform.store.users.get(m.userId);
      return `<tr><td>${escapeHtml(m.userId)}</td><td>${escapeHtml(u?.name)} ${escapeHtml(u?.surname)}</td><td>${escapeHtml(m.role)}</td><td>${postButton(`/ui/groups/${pathId(g.id)}/users/${pathId(m.userId)}/remove`, 'Remove user from group')}</td></tr>`;
    })
    .join('');
  const bills = [...platform.store.bills.values()]
    .filter((b) => b.groupId === g.id)
    .map((b) => `<tr><td>${escapeHtml(b.id)}</td><td>${escapeHtml(b.description)}</td><td>${(b.priceCents / 100).toFixed(2)} ${escapeHtml(b.currency)} × ${b.units}</td><td>${escapeHtml(b.status)}</td><td>${escapeHtml(b.createdAt)}</td><td>${b.status === 'submitted' ? postButton(`/ui/bills/${pathId(b.id)}/invoice`, 'Mark invoiced') : ''}</td></tr>`)
    .join('');
  const rbills = [...platform.store.recurringBills.values()]
    .filter((b) => b.groupId === g.id)
    .map((b) => `<tr><td>${escapeHtml(b.id)}</td><td>${escapeHtml(b.description)}</td><td>${(b.priceCents / 100).toFixed(2)} ${escapeHtml(b.currency)}</td><td>every ${b.frequency} ${escapeHtml(b.period)}</td><td>${b.cycles ?? '∞'}</td><td>${escapeHtml(b.status)}</td></tr>`)
    .join('');
  const collections = CONNEC_COLLECTIONS.map((c) => ({ c, n: platform.store.listRecords(g.id, c).length }))
    .filter((x) => x.n > 0 || ['organizations', 'people', 'items', 'invoices', 'payments'].includes(x.c))
    .map((x) => `<li><a href="/ui/groups/${pathId(g.id)}/connec/${x.c}">${x.c}</a> (${x.n})</li>`)
    .join('');
  return page(
    `${g.name} (${g.id})`,
    `${notice ? `<p class="delivered">${escapeHtml(notice)}</p>` : ''}<p>Marketplace <b>${escapeHtml(g.marketplace)}</b>, org <code>${escapeHtml(g.orgUid)}</code>, status <b>${escapeHtml(g.status)}</b>, free trial until ${escapeHtml(g.freeTrialEndAt)}.
 <a class="button" href="/launch/${pathId(g.id)}" data-launch="${escapeHtml(g.id)}">Launch app</a> ${g.status === 'running' ? postButton(`/ui/groups/${pathId(g.id)}/cancel`, 'Cancel group') : ''}</p>
<h2 id="sync">Synchronization</h2><p>Calls the app's connector control endpoints as Maestrano does (<code>app.synchronization_*_path</code>, Basic auth of the marketplace) and shows its answer.</p>
<form method="post" action="/ui/groups/${pathId(g.id)}/sync">${SYNC_BUTTONS.map((b) => `<button type="submit" name="action" value="${b.value}">${escapeHtml(b.label)}</button>`).join(' ')}</form>
${syncAnswer(platform, g.id, syncDelivery)}
<h2>Members</h2><table><tr><th>User</th><th>Name</th><th>Role</th><th></th></tr>${members}</table>
<h2 id="bills">Bills</h2><table><tr><th>Id</th><th>Description</th><th>Price</th><th>Status</th><th>Created</th><th></th></tr>${bills}</table>
<h2>Recurring bills</h2><table><tr><th>Id</th><th>Description</th><th>Price</th><th>Period</th><th>Cycles</th><th>Status</th></tr>${rbills}</table>
<h2>Connec! data</h2><ul>${collections}</ul>`,
  );
}

/**
 * The name shown for a Connec! record in a list: its `name`, else a person's first and last
 * name (a person's `title` is only "Ms." or "Dr."), else its `title` (invoices, payments).
 */
function recordLabel(data: Record<string, unknown>): string {
  const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
  if (data.name !== undefined && data.name !== null) return typeof data.name === 'string' ? data.name : JSON.stringify(data.name);
  const person = [text(data.first_name), text(data.last_name)].filter(Boolean).join(' ');
  if (person) return person;
  if (data.title !== undefined && data.title !== null) return typeof data.title === 'string' ? data.title : JSON.stringify(data.title);
  return '';
}

function recordsPage(platform: Platform, groupId: string, collection: string, skip: number): string {
  const g = platform.requireGroup(groupId);
  const all = platform.store.listRecords(g.id, collection);
  const rows = all
    .slice(skip, skip + PAGE)
    .map((r) => {
      const label = recordLabel(r.data);
      return `<tr><td><a href="/ui/groups/${pathId(g.id)}/connec/${pathId(collection)}/${pathId(r.id)}">${escapeHtml(r.id)}</a></td><td>${escapeHtml(r.data.code ?? r.data.transaction_number ?? '')}</td><td>${escapeHtml(label)}</td><td>${escapeHtml(r.data.status ?? '')}</td><td>${escapeHtml(r.updatedAt)}</td></tr>`;
    })
    .join('');
  const nav = `${skip > 0 ? `<a href="?skip=${Math.max(0, skip - PAGE)}">Previous</a> ` : ''}${skip + PAGE < all.length ? `<a href="?skip=${skip + PAGE}">Next</a>` : ''}`;
  return page(
    `${collection} of ${g.name}`,
    `<p>${all.length} records. ${nav}</p><table><tr><th>Id</th><th>Code</th><th>Name</th><th>Status</th><th>Updated</th></tr>${rows}</table>`,
  );
}

function recordPage(platform: Platform, groupId: string, collection: string, id: string, error: string | null, draft: string | null): string {
  const g = platform.requireGroup(groupId);
  const r = platform.store.records.get(id);
  if (!r || r.groupId !== g.id || r.collection !== collection) throw new PlatformError(404, 'id', 'Resource not found');
  const text = draft ?? JSON.stringify(r.data, null, 2);
  return page(
    `Edit ${collection} ${id}`,
    `${error ? `<p class="failed">${escapeHtml(error)}</p>` : ''}<p>Created ${escapeHtml(r.createdAt)}, updated ${escapeHtml(r.updatedAt)}. Saving sends a Connec! notification to the app.</p>
<form method="post"><textarea name="record" id="record-json">${escapeHtml(text)}</textarea><br><button type="submit" id="save-record">Save</button></form>`,
  );
}

function deliveriesPage(platform: Platform): string {
  const rows = [...platform.notifier.deliveries]
    .reverse()
    .map(
      (d) =>
        `<tr><td>${escapeHtml(d.createdAt)}</td><td>${escapeHtml(d.kind)}</td><td>${escapeHtml(d.method)} ${escapeHtml(d.url)}</td><td class="${d.state}">${escapeHtml(d.state)}</td>` +
        `<td>${d.attempts.map((a) => `${escapeHtml(a.at)}: ${a.status ?? '-'} ${escapeHtml(a.error ?? 'ok')}`).join('<br>')}</td><td>${escapeHtml(d.nextAttemptAt ?? '')}</td><td><details><summary>body</summary><pre>${escapeHtml(d.body ?? '')}</pre></details>${d.response ? `<details><summary>answer</summary><pre>${escapeHtml(d.response.body)}</pre></details>` : ''}</td></tr>`,
    )
    .join('');
  return page('Delivery log', `<table><tr><th>Created</th><th>Kind</th><th>Request</th><th>State</th><th>Attempts</th><th>Next attempt</th><th></th></tr>${rows}</table>`);
}

/** Server-rendered web UI (no build step). */
export async function handleUi(platform: Platform, req: SandboxRequest): Promise<SandboxResponse | null> {
  const path = req.url.pathname.replace(/\/+$/, '') || '/';
  if (path === '/' && req.method === 'GET') return html(200, home(platform));
  if (!path.startsWith('/ui')) return null;
  const seg = decodePathSegments(path)?.slice(1);
  if (seg === undefined) return html(400, page('Bad request', `<p class="failed">${MALFORMED_PATH_MESSAGE}.</p>`));
  const [a, b, c, d, e, f] = seg;
  try {
    if (req.method === 'GET') {
      if (a === 'groups' && b === undefined) return html(200, groupsPage(platform));
      if (a === 'users' && b === undefined) return html(200, usersPage(platform));
      if (a === 'deliveries') return html(200, deliveriesPage(platform));
      if (a === 'groups' && b !== undefined && c === undefined) return html(200, groupPage(platform, b, req.url.searchParams.get('notice'), req.url.searchParams.get('sync')));
      if (a === 'groups' && b !== undefined && c === 'connec' && d !== undefined && e === undefined) {
        return html(200, recordsPage(platform, b, d, Math.max(0, Number(req.url.searchParams.get('skip') ?? '0') || 0)));
      }
      if (a === 'groups' && b !== undefined && c === 'connec' && d !== undefined && e !== undefined) return html(200, recordPage(platform, b, d, e, null, null));
    }
    if (req.method === 'POST') {
      if (a === 'groups' && b !== undefined && c === 'cancel') {
        platform.cancelGroup(b);
        return redirect(`/ui/groups/${encodeURIComponent(b)}?notice=${encodeURIComponent('Group cancelled; webhook queued')}`);
      }
      if (a === 'groups' && b !== undefined && c === 'sync' && d === undefined) {
        const group = platform.requireGroup(b);
        const chosen = SYNC_BUTTONS.find((x) => x.value === new URLSearchParams(req.body).get('action'));
        if (!chosen) throw new PlatformError(400, 'action', `Unknown synchronization action: use ${SYNC_BUTTONS.map((x) => x.label).join(', ')}`);
        const result = await platform.syncControl(group.id, chosen.action, chosen.action === 'start' ? { fullSync: chosen.fullSync } : {});
        return redirect(`/ui/groups/${encodeURIComponent(group.id)}?sync=${encodeURIComponent(result.delivery.id)}#sync`);
      }
      if (a === 'groups' && b !== undefined && c === 'users' && d !== undefined && e === 'remove') {
        platform.removeMember(b, d);
        return redirect(`/ui/groups/${encodeURIComponent(b)}?notice=${encodeURIComponent(`${d} removed; webhook queued`)}`);
      }
      if (a === 'bills' && b !== undefined && c === 'invoice') {
        const bill = platform.store.bills.get(b);
        if (!bill) throw new PlatformError(404, 'id', 'Unknown bill');
        if (bill.status === 'submitted') {
          bill.status = 'invoiced';
          bill.updatedAt = new Date().toISOString();
          platform.store.putBill(bill);
        }
        return redirect(`/ui/groups/${encodeURIComponent(bill.groupId)}#bills`);
      }
      if (a === 'groups' && b !== undefined && c === 'connec' && d !== undefined && e !== undefined && f === undefined) {
        const raw = new URLSearchParams(req.body).get('record') ?? '';
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch {
          return html(400, recordPage(platform, b, d, e, 'The record must be valid JSON', raw));
        }
        if (!isRecord(parsed)) return html(400, recordPage(platform, b, d, e, 'The record must be a JSON object', raw));
        try {
          platform.connecUpdate(b, d, e, { ...(JSON.parse(raw) as JsonObject), opts: { sparse: false } }, 'ui');
        } catch (err) {
          if (err instanceof ConnecError) return html(err.status, recordPage(platform, b, d, e, err.message, raw));
          throw err;
        }
        return redirect(`/ui/groups/${encodeURIComponent(b)}/connec/${encodeURIComponent(d)}/${encodeURIComponent(e)}`);
      }
    }
  } catch (err) {
    if (err instanceof PlatformError) return html(err.status, page('Error', `<p class="failed">${escapeHtml(err.message)}</p>`));
    throw err;
  }
  return html(404, page('Not found', '<p>No such page.</p>'));
}
