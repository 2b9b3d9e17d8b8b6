/**
 * The CRM's web app (Hono). Maestrano's routes are mounted with one line; the rest is an
 * ordinary CRM that reads its own tables and calls the SDK for pushes and charges.
 */
import { randomBytes } from 'node:crypto';
import { isMaestranoError, type Maestrano, SsoError } from '@org/maestrano-sdk';
import { type Context, Hono } from 'hono';
import { csrf } from 'hono/csrf';
import type { Database } from './db.js';
import { toContactData } from './entities.js';
import { EXPORT_PRICE_CENTS, PLAN, SESSION_COOKIE, type SessionEndedReason, sessionCookie } from './maestrano.js';
import {
  accountsPage,
  billingFailedPage,
  billingPage,
  contactEditPage,
  contactsPage,
  type PageContext,
  refusedPage,
  signedOutPage,
} from './views.js';

export interface CrmAppOptions {
  db: Database;
  mno: Maestrano;
  secureCookies?: boolean;
}

interface SignedIn {
  sessionId: string;
  user: { id: string; email: string; firstName: string | null; lastName: string | null };
  company: { id: string; name: string; tenant: string; groupId: string; currency: string };
  page: PageContext;
}

function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return null;
}

const CHARGE_ID = /^ch_[0-9a-f]{16}$/;

/**
 * A plain signed decimal (`-12.5`): a spreadsheet reads it as the same number, so it is exported
 * as it is. Anything else starting with a sign is not: `+1-800-555-0100` would be computed
 * (-1454) and `+1 555 4434` refused as a formula, so those keep the `'` that makes them text.
 */
const PLAIN_NUMBER = /^[+-]?\d+(\.\d+)?$/;

/**
 * One CSV cell (RFC 4180 quoting). Contact fields come from Connec!, so a value a spreadsheet
 * would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is prefixed with `'`, unless it
 * is a plain signed decimal.
 */
function csvCell(value: string | null): string {
  if (value === null) return '';
  const safe = /^[=+\-@\t\r]/.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
const newChargeId = () => `ch_${randomBytes(8).toString('hex')}`;

/** What the user of a session Maestrano ended is told on their next request. */
const ENDED_MESSAGES: Record<SessionEndedReason, string> = {
  company_cancelled: 'This company no longer has access to Acme CRM (its Maestrano subscription was cancelled).',
  access_removed: 'Your access to this company was removed on Maestrano.',
};
const endedMessage = (reason: string) => ENDED_MESSAGES[reason as SessionEndedReason] ?? 'Your session was ended on Maestrano.';

export function createCrmApp({ db, mno, secureCookies = false }: CrmAppOptions): Hono {
  const { prisma } = db;
  const app = new Hono();

  // Every Maestrano route (metadata, SSO, account webhooks, Connec! notifications), every tenant.
  app.all('/maestrano/*', (c) => mno.handler(c.req.raw));

  // Readiness for a load balancer or an orchestrator: the SDK's storage reachable, writable and
  // migrated (`mno.health()` never throws for a storage failure; it says which call failed).
  app.get('/healthz', async (c) => {
    const report = await mno.health({ timeoutMs: 2_000 });
    return c.json(report, report.ok ? 200 : 503);
  });

  const html = (c: Context, body: string, status: 200 | 403 | 404 | 400 = 200) => c.html(body, status);

  // CSRF: the CRM's own forms must come from the CRM's origin (the Origin check of
  // hono/csrf). Maestrano's routes are exempt: the IdP posts the SAML response cross-site,
  // and the webhooks authenticate with HTTP Basic.
  const sameOrigin = csrf();
  app.use('*', (c, next) => (c.req.path.startsWith('/maestrano/') ? next() : sameOrigin(c, next)));
  const signOut = (location: string) =>
    new Response(null, { status: 303, headers: { location, 'set-cookie': sessionCookie('', 0, secureCookies) } });
  const loginPage = (reason?: string, next?: string | null) =>
    signedOutPage(
      mno.tenants.list().map((t) => ({ name: t.name, initUrl: mno.sso.initUrl(t.name, next ? { returnTo: next } : {}) })),
      reason,
    );
  /**
   * The sign-in page, remembering the page asked for (a GET of one of the CRM's own pages), so
   * that signing in again lands there instead of on the contact list. The SDK checks the path
   * again (same origin, RelayState size) before it reaches `onLogin`'s `returnTo`.
   */
  const loginFor = (c: Context): string => {
    const url = new URL(c.req.url);
    const next = `${url.pathname}${url.search}`;
    return c.req.method === 'GET' && url.pathname !== '/' && url.pathname !== '/login' ? `/login?next=${encodeURIComponent(next)}` : '/login';
  };
  /** A `next` that is a path of this origin (not `//host`, not a URL), or null. */
  const nextPath = (value: string | undefined): string | null =>
    value?.startsWith('/') && !value.startsWith('//') && !value.startsWith('/\\') && value.length <= 80 ? value : null;

  /**
   * Resolves the signed-in user, enforcing the checklist's access rules: the Maestrano
   * session is re-checked (at most one IdP call per 3 minutes), a cancelled company or a
   * removed member is refused.
   */
  async function signedIn(c: Context): Promise<SignedIn | Response> {
    const sid = readCookie(c.req.header('cookie'), SESSION_COOKIE);
    if (!sid) return c.redirect(loginFor(c), 303);
    const row = await prisma.session.findUnique({ where: { id: sid }, include: { user: true } });
    if (!row || row.expiresAt.getTime() < Date.now()) return signOut(loginFor(c));
    // Ended by Maestrano (company cancelled, member removed): grants nothing, says why. A later
    // re-invitation does not revive it; the user signs in again through Maestrano.
    if (row.endedReason) return c.html(refusedPage(endedMessage(row.endedReason)), 403);
    const ended = async (reason: SessionEndedReason) => {
      await prisma.session.updateMany({ where: { id: sid, endedReason: null }, data: { endedReason: reason } });
      return c.html(refusedPage(endedMessage(reason)), 403);
    };
    const company = await prisma.company.findUnique({ where: { id: row.companyId } });
    if (company?.status !== 'active') return ended('company_cancelled');
    const membership = await prisma.membership.findUnique({
      where: { userId_companyId: { userId: row.userId, companyId: company.id } },
    });
    if (row.user.status !== 'active' || !membership?.active) return ended('access_removed');
    let check: Awaited<ReturnType<Maestrano['sso']['checkSession']>>;
    try {
      check = await mno.sso.checkSession(row.maestrano);
    } catch (error) {
      // Maestrano did not answer the session check: refuse this request (fail closed, as the
      // protocol's SDKs do) but keep the session, so the next request after the outage works.
      if (!(error instanceof SsoError)) throw error;
      return c.html(refusedPage('Your Maestrano session could not be confirmed (the platform did not answer). Please try again in a moment.'), 503);
    }
    if (!check.valid) {
      await prisma.session.delete({ where: { id: sid } }).catch(() => undefined);
      return signOut(check.initUrl ?? '/login');
    }
    if (check.checked) {
      await prisma.session.update({ where: { id: sid }, data: { maestrano: { ...check.session } } });
    }
    const name = [row.user.firstName, row.user.lastName].filter(Boolean).join(' ') || row.user.email;
    return {
      sessionId: sid,
      user: row.user,
      company: { id: company.id, name: company.name, tenant: company.tenant, groupId: company.groupId, currency: company.currency },
      page: { title: '', user: { name, email: row.user.email }, company: { name: company.name, tenant: company.tenant } },
    };
  }

  /**
   * The company's sync with Connec! as the list pages describe it. `off` while Maestrano has
   * switched it off (`toggle_sync` sets the group's `settings.sync.enabled` to false: nothing is
   * imported then, so an unfinished import would otherwise read as running forever); `running`
   * while the initial import is: the SDK checkpoints it per entity in its cursors, and marks
   * each entity's cursor complete when it is done.
   */
  async function importRunning(company: SignedIn['company']): Promise<'running' | 'off' | false> {
    const [group, cursors] = await Promise.all([
      mno.runtime.storage.groups.get(company.tenant, company.groupId),
      mno.runtime.storage.cursors.list(company.tenant, company.groupId),
    ]);
    const sync = group?.settings.sync;
    if (typeof sync === 'object' && sync !== null && !Array.isArray(sync) && sync.enabled === false) return 'off';
    const done = (entity: string) => cursors.some((k) => k.entity === entity && k.kind === 'import' && k.complete);
    return done('accounts') && done('contacts') ? false : 'running';
  }

  app.get('/', async (c) => {
    const who = await signedIn(c);
    if (!(who instanceof Response)) return c.redirect('/contacts', 303);
    // Maestrano did not answer the session check: that page says so, and the session is kept
    // (the sign-in page would only suggest signing in again, which fails the same way).
    return who.status === 503 ? who : c.redirect('/login', 303);
  });

  // A browser whose session Maestrano ended is told why here too (`/` sends it here).
  app.get('/login', async (c) => {
    const sid = readCookie(c.req.header('cookie'), SESSION_COOKIE);
    const row = sid ? await prisma.session.findUnique({ where: { id: sid }, select: { endedReason: true, expiresAt: true } }) : null;
    const reason = row?.endedReason && row.expiresAt.getTime() >= Date.now() ? endedMessage(row.endedReason) : undefined;
    return html(c, loginPage(reason, nextPath(c.req.query('next'))));
  });

  app.get('/contacts', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const where = { companyId: who.company.id };
    const [rows, total, importing] = await Promise.all([
      prisma.contact.findMany({ where, include: { account: true }, orderBy: [{ lastName: 'asc' }, { id: 'asc' }], take: 200 }),
      prisma.contact.count({ where }),
      importRunning(who.company),
    ]);
    const saved = c.req.query('saved');
    // `later`: the push was skipped (the company's sync is switched off); the SDK pushes the
    // change once the sync is switched back on.
    const flash =
      saved === 'later' ? 'Contact saved. It will be shared with Connec! once sync is switched back on.' : saved ? 'Contact saved and shared with Connec!.' : undefined;
    return html(
      c,
      contactsPage(
        { ...who.page, title: 'Contacts', flash, importing },
        rows.map((r) => ({ ...r, accountName: r.account?.name ?? null })),
        total,
      ),
    );
  });

  app.get('/contacts/:id', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const contact = await prisma.contact.findFirst({ where: { id: c.req.param('id'), companyId: who.company.id } });
    if (!contact) return html(c, refusedPage('No such contact.'), 404);
    return html(c, contactEditPage({ ...who.page, title: 'Edit contact' }, { ...contact, accountName: null }));
  });

  app.post('/contacts/:id', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const existing = await prisma.contact.findFirst({ where: { id: c.req.param('id'), companyId: who.company.id } });
    if (!existing) return html(c, refusedPage('No such contact.'), 404);
    const form = await c.req.parseBody();
    const text = (k: string) => {
      const v = form[k];
      return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
    };
    const lastName = text('lastName');
    if (!lastName) {
      // The form comes back with what the user typed (not the stored values), the error tied to its field.
      const submitted = { firstName: text('firstName'), lastName: '', email: text('email'), phone: text('phone'), jobTitle: text('jobTitle') };
      return html(
        c,
        contactEditPage({ ...who.page, title: 'Edit contact' }, { ...existing, ...submitted, accountName: null }, { message: 'Last name is required.', field: 'lastName' }),
        400,
      );
    }
    const updated = await prisma.contact.update({
      where: { id: existing.id },
      data: { firstName: text('firstName'), lastName, email: text('email'), phone: text('phone'), jobTitle: text('jobTitle') },
    });
    // Share the change with Connec! (the other apps of the company see it).
    const result = await mno.sync.push({
      tenant: who.company.tenant,
      groupId: who.company.groupId,
      entity: 'contacts',
      record: toContactData(updated),
    });
    if (result.status === 'failed') {
      // No answer, or Connec! failing (5xx, rate limited): nothing was refused, the change is
      // just not shared yet. The form keeps it; saving again once Connec! is back shares it.
      const unavailable = result.code === 'push_failed' || result.code === 'http_429' || /^http_5\d\d$/.test(result.code ?? '');
      const message = unavailable
        ? 'Saved here, but not shared yet: Connec! could not be reached. Save again in a moment to share it.'
        : `Saved locally; Connec! refused it: ${result.error ?? 'unknown error'}`;
      return c.html(contactEditPage({ ...who.page, title: 'Edit contact' }, { ...updated, accountName: null }, { message }), unavailable ? 503 : 400);
    }
    return c.redirect(result.status === 'skipped' ? '/contacts?saved=later' : '/contacts?saved=1', 303);
  });

  app.get('/accounts', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const where = { companyId: who.company.id };
    const [rows, total, importing] = await Promise.all([
      prisma.account.findMany({ where, include: { _count: { select: { contacts: true } } }, orderBy: [{ name: 'asc' }, { id: 'asc' }], take: 200 }),
      prisma.account.count({ where }),
      importRunning(who.company),
    ]);
    return html(
      c,
      accountsPage(
        { ...who.page, title: 'Accounts', importing },
        rows.map((a) => ({ id: a.id, name: a.name, industry: a.industry, email: a.email, contacts: a._count.contacts })),
        total,
      ),
    );
  });

  app.get('/billing', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const group = await mno.runtime.storage.groups.get(who.company.tenant, who.company.groupId);
    const charges = await prisma.charge.findMany({ where: { companyId: who.company.id }, orderBy: { createdAt: 'desc' }, take: 50 });
    return html(
      c,
      billingPage(
        { ...who.page, title: 'Billing' },
        {
          plan: `${PLAN.description}: ${(PLAN.priceCents / 100).toFixed(2)} per month`,
          trialEndsAt: group?.trialEndsAt ?? null,
          exportPriceCents: EXPORT_PRICE_CENTS,
          currency: who.company.currency,
          exportKey: newChargeId(),
          charges,
        },
      ),
    );
  });

  // 2.1.2: an ad-hoc bill for extra usage. The idempotency key is the charge row's id, which
  // the billing page renders into the form: a double-submitted or retried form reuses it,
  // so it never bills twice (the second submit replays the first charge).
  app.post('/billing/export', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const form = await c.req.parseBody();
    const chargeId = typeof form.key === 'string' && CHARGE_ID.test(form.key) ? form.key : null;
    if (!chargeId) return html(c, refusedPage('This export form is out of date; open the billing page again.'), 400);
    let charge = await prisma.charge.findUnique({ where: { id: chargeId } });
    if (charge && charge.companyId !== who.company.id) return html(c, refusedPage('This export form is out of date; open the billing page again.'), 400);
    if (!charge) {
      const count = await prisma.contact.count({ where: { companyId: who.company.id } });
      const description = `Acme CRM contacts export (${count} contacts)`;
      charge = await prisma.charge
        .create({ data: { id: chargeId, companyId: who.company.id, description, priceCents: EXPORT_PRICE_CENTS, currency: who.company.currency } })
        // Two submits at once: the other one created the row; charge what it recorded.
        .catch(async (error: unknown) => {
          const raced = await prisma.charge.findUnique({ where: { id: chargeId } });
          if (!raced) throw error;
          return raced;
        });
    }
    let result: Awaited<ReturnType<Maestrano['billing']['charge']>>;
    try {
      result = await mno.billing.charge({
        tenant: who.company.tenant,
        groupId: who.company.groupId,
        priceCents: charge.priceCents,
        currency: charge.currency,
        description: charge.description,
        idempotencyKey: chargeId,
      });
    } catch (error) {
      // Maestrano did not bill it (unreachable, refused, or the outcome is not known yet): say
      // so and offer the same form again. Its key is this charge's, so a retry bills it at most once.
      if (!isMaestranoError(error)) throw error;
      return c.html(billingFailedPage({ ...who.page, title: 'Billing' }, chargeId), 503);
    }
    await prisma.charge.update({ where: { id: chargeId }, data: { billId: result.billId } });
    // What was paid for: the file (a replayed submit downloads it again, billed once).
    return c.redirect(`/billing/exports/${chargeId}.csv`, 303);
  });

  // The contacts export of a billed charge, for the company that paid for it.
  app.get('/billing/exports/:file', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const chargeId = /^(.+)\.csv$/.exec(c.req.param('file'))?.[1] ?? '';
    const charge = CHARGE_ID.test(chargeId) ? await prisma.charge.findUnique({ where: { id: chargeId } }) : null;
    if (!charge || charge.companyId !== who.company.id || !charge.billId) return html(c, refusedPage('No such export.'), 404);
    const contacts = await prisma.contact.findMany({
      where: { companyId: who.company.id },
      include: { account: true },
      orderBy: [{ lastName: 'asc' }, { id: 'asc' }],
    });
    const lines = [
      ['First name', 'Last name', 'Email', 'Phone', 'Job title', 'Account'],
      ...contacts.map((k) => [k.firstName, k.lastName, k.email, k.phone, k.jobTitle, k.account?.name ?? null]),
    ].map((cells) => cells.map(csvCell).join(','));
    return new Response(`${lines.join('\r\n')}\r\n`, {
      headers: {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="contacts-${charge.createdAt.toISOString().slice(0, 10)}.csv"`,
        'cache-control': 'no-store',
      },
    });
  });

  app.post('/logout', async (c) => {
    const sid = readCookie(c.req.header('cookie'), SESSION_COOKIE);
    const row = sid ? await prisma.session.findUnique({ where: { id: sid } }) : null;
    if (sid) await prisma.session.deleteMany({ where: { id: sid } });
    const stored = row?.maestrano as { tenant?: string; uid?: string } | undefined;
    let target = '/login';
    if (stored?.tenant && stored.uid) {
      // Maestrano's logout too, unless the marketplace has left the list since the sign-in.
      if (mno.tenants.get(stored.tenant)) target = mno.sso.logoutUrl({ tenant: stored.tenant, uid: stored.uid });
    }
    return signOut(target);
  });

  return app;
}
