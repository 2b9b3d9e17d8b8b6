/** The guides' example app: a few Hono routes around the Maestrano handler. */
import { type Maestrano, SsoError } from '@org/maestrano-sdk';
import { type Context, Hono } from 'hono';
import type { Db, Session } from './db.js';
import { SESSION_COOKIE } from './maestrano.js';

const EXPORT_PRICE_CENTS = 500;

function cookie(c: Context, name: string): string | null {
  for (const part of (c.req.header('cookie') ?? '').split(';')) {
    const [key, value] = part.trim().split('=');
    if (key === name && value) return value;
  }
  return null;
}

export function createApp(mno: Maestrano, db: Db): Hono {
  const app = new Hono();

  // #region mount
  // Every Maestrano route of every tenant: metadata, SSO, account webhooks, Connec! notifications.
  app.all('/maestrano/*', (c) => mno.handler(c.req.raw));
  // #endregion mount

  // #region health
  // Readiness for a load balancer or Kubernetes: storage reachable, writable and migrated.
  app.get('/healthz', async (c) => {
    const report = await mno.health({ timeoutMs: 2_000 });
    return c.json(report, report.ok ? 200 : 503);
  });
  // #endregion health

  // #region session
  /** The signed-in session, or the response to send instead. */
  async function signedIn(c: Context): Promise<{ sid: string; session: Session } | Response> {
    const sid = cookie(c, SESSION_COOKIE);
    const session = sid ? db.sessions.get(sid) : undefined;
    if (!sid || !session) return c.redirect('/login', 303);
    if (!db.companies.get(session.companyId)?.active) return c.text('Your company no longer has access.', 403);
    // At most one call to the IdP every 3 minutes; a session ended on Maestrano ends here.
    let check: Awaited<ReturnType<Maestrano['sso']['checkSession']>>;
    try {
      check = await mno.sso.checkSession(session.maestrano);
    } catch (error) {
      // Maestrano did not answer (session_check_failed): refuse this request, keep the session.
      if (!(error instanceof SsoError)) throw error;
      return c.text('Your Maestrano session could not be confirmed. Please try again in a moment.', 503);
    }
    if (!check.valid) {
      db.sessions.delete(sid);
      return c.redirect(check.initUrl ?? '/login', 303);
    }
    session.maestrano = check.session;
    return { sid, session };
  }
  // #endregion session

  // #region login
  // Signed out: one link per marketplace starts the SSO (the marketplace's launch button lands there too).
  app.get('/login', (c) =>
    c.html(mno.tenants.list().map((t) => `<a href="${mno.sso.initUrl(t.name)}">Sign in through ${t.name}</a>`).join('<br>')),
  );
  // #endregion login

  app.get('/contacts', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const company = db.companies.get(who.session.companyId);
    const rows = [...db.contacts.values()].filter((r) => r.tenant === company?.tenant && r.groupId === company?.groupId);
    return c.json({ company: company?.name, contacts: rows.map(({ id, firstName, lastName, email }) => ({ id, firstName, lastName, email })) });
  });

  // #region push
  // A local edit is saved, then shared with Connec! (the company's other apps see it).
  app.post('/contacts/:id', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const contact = db.contacts.get(c.req.param('id'));
    const company = db.companies.get(who.session.companyId);
    if (!contact || !company || contact.groupId !== company.groupId) return c.notFound();
    const form = await c.req.parseBody();
    if (typeof form.lastName === 'string' && form.lastName.trim()) contact.lastName = form.lastName.trim();
    contact.updatedAt = new Date();
    const result = await mno.sync.push({ tenant: company.tenant, groupId: company.groupId, entity: 'contacts', record: contact });
    if (result.status === 'failed') return c.text(`Saved here, not shared with Connec! (${result.error ?? 'unknown error'}); saving again retries`, 502);
    return c.redirect('/contacts', 303);
  });
  // #endregion push

  // #region charge
  // Extra usage billed through Maestrano: the idempotency key names this one charge. A client
  // that retries sends the same Idempotency-Key header, so the retry never bills twice (without
  // it, each request is a new charge; an HTML form renders its key into the form instead).
  app.post('/export', async (c) => {
    const who = await signedIn(c);
    if (who instanceof Response) return who;
    const company = db.companies.get(who.session.companyId);
    if (!company) return c.notFound();
    const requestId = c.req.header('idempotency-key') ?? crypto.randomUUID();
    const bill = await mno.billing.charge({
      tenant: company.tenant,
      groupId: company.groupId,
      priceCents: EXPORT_PRICE_CENTS,
      currency: 'AUD',
      description: 'Contacts export',
      idempotencyKey: `export:${company.id}:${requestId}`,
    });
    return c.json({ billId: bill.billId, status: bill.status });
  });
  // #endregion charge

  // #region logout
  app.post('/logout', (c) => {
    const sid = cookie(c, SESSION_COOKIE);
    const stored = sid ? db.sessions.get(sid)?.maestrano : undefined;
    if (sid) db.sessions.delete(sid);
    // Ends the Maestrano session too (the IdP's logout page).
    const location = stored ? mno.sso.logoutUrl(stored) : '/login';
    return c.redirect(location, 303);
  });
  // #endregion logout

  return app;
}
