/** Server-rendered pages of the example CRM. Plain template strings, every value escaped. */

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

export interface PageContext {
  title: string;
  user?: { name: string; email: string } | undefined;
  company?: { name: string; tenant: string } | undefined;
  flash?: string | undefined;
  /**
   * The company's sync with Connec! as list pages describe it: its initial import still
   * running, or switched off by Maestrano (`toggle_sync`); nothing when it runs normally.
   */
  importing?: 'running' | 'off' | false | undefined;
}

/** The note a list page shows while the initial import runs (with a way to see what arrived since), or while sync is off. */
function importNote(ctx: PageContext, path: string): string {
  if (ctx.importing === 'off') {
    return '<p class="notice" id="sync-off" role="status">Sync with Connec! is switched off for this company: changes made here or in other apps are not exchanged until Maestrano switches it back on.</p>';
  }
  return ctx.importing === 'running'
    ? `<p class="notice" id="import-running" role="status">Import from Connec! in progress: records are still arriving. <a href="${path}">Refresh</a> to see the latest.</p>`
    : '';
}

export function layout(ctx: PageContext, body: string): string {
  const nav = ctx.user
    ? `<nav>
        <a href="/contacts">Contacts</a>
        <a href="/accounts">Accounts</a>
        <a href="/billing">Billing</a>
        <span class="who">${escapeHtml(ctx.user.name)} · ${escapeHtml(ctx.company?.name ?? '')}
          <small>(${escapeHtml(ctx.company?.tenant ?? '')})</small></span>
        <form method="post" action="/logout"><button type="submit">Log out</button></form>
      </nav>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(ctx.title)} · Acme CRM</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2433; background: #f6f7fb; }
  header { background: #23395d; color: #fff; padding: 12px 24px; display: flex; align-items: center; gap: 24px; }
  header h1 { font-size: 18px; margin: 0; }
  nav { display: flex; gap: 16px; align-items: center; flex: 1; }
  nav a { color: #cfe0ff; text-decoration: none; }
  nav .who { margin-left: auto; color: #e8eefc; }
  nav form { margin: 0; }
  main { padding: 24px; max-width: 1100px; margin: 0 auto; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid #e3e6ef; }
  th { background: #eef1f8; font-weight: 600; }
  .flash { background: #e6f6ea; border: 1px solid #9fd8ad; padding: 8px 12px; margin-bottom: 16px; }
  .notice { background: #eef4ff; border: 1px solid #a9c2f0; padding: 8px 12px; margin-bottom: 16px; }
  .error { background: #fdecec; border: 1px solid #f2a5a5; padding: 8px 12px; }
  form.edit label { display: block; margin: 10px 0 4px; font-weight: 600; }
  form.edit input { width: 320px; padding: 6px; }
  button, .button { background: #2d6cdf; color: #fff; border: 0; padding: 7px 14px; border-radius: 4px; cursor: pointer; text-decoration: none; }
  .muted { color: #6b7385; }
</style>
</head>
<body>
<header><h1>Acme CRM</h1>${nav}</header>
<main>
${ctx.flash ? `<div class="flash">${escapeHtml(ctx.flash)}</div>` : ''}
${body}
</main>
</body>
</html>`;
}

export interface ContactRow {
  id: string;
  firstName: string | null;
  lastName: string;
  email: string | null;
  phone: string | null;
  jobTitle: string | null;
  accountName: string | null;
}

export function contactsPage(ctx: PageContext, contacts: ContactRow[], total: number): string {
  const rows = contacts
    .map(
      (c) => `<tr data-contact-id="${escapeHtml(c.id)}">
        <td><a href="/contacts/${encodeURIComponent(c.id)}">${escapeHtml([c.firstName, c.lastName].filter(Boolean).join(' '))}</a></td>
        <td>${escapeHtml(c.email)}</td><td>${escapeHtml(c.phone)}</td>
        <td>${escapeHtml(c.jobTitle)}</td><td>${escapeHtml(c.accountName)}</td></tr>`,
    )
    .join('\n');
  return layout(
    ctx,
    `<h2>Contacts <small class="muted">(${total})</small></h2>
${importNote(ctx, '/contacts')}
<table id="contacts"><thead><tr><th>Name</th><th>Email</th><th>Phone</th><th>Job title</th><th>Account</th></tr></thead>
<tbody>${rows || '<tr><td colspan="5" class="muted">No contacts yet. They arrive from Connec! with the initial import.</td></tr>'}</tbody></table>`,
  );
}

export interface AccountRow {
  id: string;
  name: string;
  industry: string | null;
  email: string | null;
  contacts: number;
}

export function accountsPage(ctx: PageContext, accounts: AccountRow[], total: number): string {
  const rows = accounts
    .map(
      (a) => `<tr data-account-id="${escapeHtml(a.id)}"><td>${escapeHtml(a.name)}</td><td>${escapeHtml(a.industry)}</td>
        <td>${escapeHtml(a.email)}</td><td>${a.contacts}</td></tr>`,
    )
    .join('\n');
  return layout(
    ctx,
    `<h2>Accounts <small class="muted">(${total})</small></h2>
${importNote(ctx, '/accounts')}
<table id="accounts"><thead><tr><th>Name</th><th>Industry</th><th>Email</th><th>Contacts</th></tr></thead>
<tbody>${rows || '<tr><td colspan="4" class="muted">No accounts yet.</td></tr>'}</tbody></table>`,
  );
}

/** An error shown above the contact form; `field` names the input it is about (described by it, marked invalid). */
export interface FormError {
  message: string;
  field?: string;
}

export function contactEditPage(ctx: PageContext, contact: ContactRow, error?: FormError): string {
  const field = (name: string, label: string, value: string | null, required = false) => {
    const invalid = error?.field === name ? ' aria-invalid="true" aria-describedby="form-error"' : '';
    return `<label for="${name}">${label}${required ? ' <span aria-hidden="true">*</span>' : ''}</label><input id="${name}" name="${name}" value="${escapeHtml(value)}"${required ? ' required' : ''}${invalid}>`;
  };
  return layout(
    ctx,
    `<h2>Edit contact</h2>
${error ? `<p class="error" id="form-error" role="alert">${escapeHtml(error.message)}</p>` : ''}
<form class="edit" method="post" action="/contacts/${encodeURIComponent(contact.id)}">
${field('firstName', 'First name', contact.firstName)}
${field('lastName', 'Last name', contact.lastName, true)}
${field('email', 'Email', contact.email)}
${field('phone', 'Phone', contact.phone)}
${field('jobTitle', 'Job title', contact.jobTitle)}
<p><button type="submit">Save and share with Connec!</button> <a href="/contacts">Cancel</a></p>
</form>`,
  );
}

export interface BillingView {
  plan: string;
  trialEndsAt: Date | null;
  exportPriceCents: number;
  currency: string;
  /** The export's idempotency key, fresh for each rendering of the page (a double submit reuses it). */
  exportKey: string;
  charges: { id: string; description: string; priceCents: number; billId: string | null; createdAt: Date }[];
}

export function billingPage(ctx: PageContext, view: BillingView): string {
  const money = (cents: number) => `${(cents / 100).toFixed(2)} ${escapeHtml(view.currency)}`;
  const rows = view.charges
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.createdAt.toISOString())}</td><td>${escapeHtml(c.description)}</td><td>${money(c.priceCents)}</td><td>${escapeHtml(c.billId ?? 'pending')}</td><td>${c.billId ? `<a href="/billing/exports/${escapeHtml(c.id)}.csv">Download</a>` : exportForm(c.id, 'Try again')}</td></tr>`,
    )
    .join('\n');
  return layout(
    ctx,
    `<h2>Billing</h2>
<p>Plan: <strong>${escapeHtml(view.plan)}</strong>${view.trialEndsAt ? ` · free trial until ${escapeHtml(view.trialEndsAt.toISOString().slice(0, 10))} (no charge before)` : ''}</p>
${exportForm(view.exportKey, `Export contacts as CSV (${(view.exportPriceCents / 100).toFixed(2)} ${view.currency}, billed through Maestrano)`)}
<h3>Ad-hoc charges</h3>
<table id="charges"><thead><tr><th>When</th><th>What</th><th>Price</th><th>Maestrano bill</th><th>File</th></tr></thead><tbody>${rows || '<tr><td colspan="5" class="muted">None yet.</td></tr>'}</tbody></table>`,
  );
}

/** The export form; `key` is the charge's idempotency key (a resubmit bills that charge at most once). */
function exportForm(key: string, label: string): string {
  return `<form method="post" action="/billing/export"><input type="hidden" name="key" value="${escapeHtml(key)}"><button type="submit">${escapeHtml(label)}</button></form>`;
}

/** The export was not billed (Maestrano failed or refused): nothing to download yet, the same charge can be retried. */
export function billingFailedPage(ctx: PageContext, chargeKey: string): string {
  return layout(
    ctx,
    `<h2>Export not billed</h2><p class="error" id="refused">The contacts export could not be billed through Maestrano right now, so there is nothing to download yet. Try again in a moment: the export is billed at most once.</p>
${exportForm(chargeKey, 'Try again')}<p><a href="/billing">Back to billing</a></p>`,
  );
}

export function signedOutPage(tenants: { name: string; initUrl: string }[], reason?: string): string {
  const links = tenants
    .map((t) => `<li><a class="button" href="${escapeHtml(t.initUrl)}">Sign in through ${escapeHtml(t.name)}</a></li>`)
    .join('\n');
  return layout(
    { title: 'Sign in' },
    `${reason ? `<p class="error">${escapeHtml(reason)}</p>` : ''}
<h2>Sign in</h2>
<p>Acme CRM is available on the Maestrano marketplace. Launch it from your Maestrano dashboard, or:</p>
<ul>${links}</ul>`,
  );
}

export function ssoFailedPage(message: string): string {
  return layout(
    { title: 'Sign-in failed' },
    `<h2>Sign-in through Maestrano failed</h2><p class="error" id="sso-error">${escapeHtml(message)}</p><p><a class="button" href="/login">Try again</a></p>`,
  );
}

export function refusedPage(reason: string): string {
  return layout({ title: 'Access refused' }, `<h2>Access refused</h2><p class="error" id="refused">${escapeHtml(reason)}</p>`);
}
