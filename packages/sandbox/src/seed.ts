import type { Platform } from './platform.js';
import type { ConnecRecord, Group, GroupRole, JsonObject, User } from './types.js';
import { createRandom, seededUuid } from './util.js';

export interface SeedOptions {
  /** Approximate number of Connec! records to create (split across groups). */
  records: number;
  /** PRNG seed; defaults to `records`, so the same size always yields the same data. */
  random?: number;
  /** Number of groups; default grows with `records` (2 to 50). */
  groups?: number;
}

export interface SeedSummary {
  groups: number;
  users: number;
  records: number;
  byCollection: Record<string, number>;
}

const FIRST = ['John', 'Jane', 'Alice', 'Bob', 'Carla', 'David', 'Emma', 'Farid', 'Grace', 'Hiro', 'Ines', 'Jamal', 'Kate', 'Liam', 'Maya', 'Noah', 'Olivia', 'Pablo', 'Quinn', 'Rosa', 'Sam', 'Tara', 'Uma', 'Victor', 'Wen', 'Xavier', 'Yuki', 'Zoe'];
const LAST = ['Doe', 'Smith', 'Nguyen', 'Garcia', 'Müller', 'Rossi', 'Tanaka', 'Okafor', 'Dubois', 'Kowalski', 'Silva', 'Chen', 'Patel', "O'Brien", 'Johansson', 'Haddad'];
const COMPANY_A = ['Blue', 'Acme', 'Northern', 'Green', 'Silver', 'Pacific', 'Summit', 'Bright', 'Red', 'Urban', 'Coastal', 'Iron'];
const COMPANY_B = ['Widgets', 'Consulting', 'Foods', 'Logistics', 'Labs', 'Studios', 'Traders', 'Builders', 'Health', 'Energy', 'Software', 'Media'];
const SUFFIX = ['Pty Ltd', 'Inc.', 'LLC', 'Ltd', 'GmbH', 'SARL'];
const INDUSTRY = ['Retail', 'Manufacturing', 'Services', 'Hospitality', 'Technology', 'Construction', 'Healthcare'];
const CITIES: Array<[string, string, string, string]> = [
  ['Sydney', 'NSW', 'AU', 'Australia/Sydney'],
  ['Melbourne', 'VIC', 'AU', 'Australia/Melbourne'],
  ['Auckland', 'AUK', 'NZ', 'Pacific/Auckland'],
  ['London', 'LND', 'GB', 'Europe/London'],
  ['San Francisco', 'CA', 'US', 'America/Los_Angeles'],
  ['New York', 'NY', 'US', 'America/New_York'],
  ['Paris', 'IDF', 'FR', 'Europe/Paris'],
];
const CURRENCY: Record<string, string> = { AU: 'AUD', NZ: 'NZD', GB: 'GBP', US: 'USD', FR: 'EUR' };
const PRODUCTS = ['Widget', 'Gadget', 'Consulting hour', 'Support plan', 'Licence', 'Cable', 'Adapter', 'Training day', 'Subscription', 'Toolkit'];
const ROLES: GroupRole[] = ['Admin', 'Member', 'Power User'];

/** Base time of seeded timestamps; every seeded record is 1 s after the previous one. */
export const SEED_EPOCH = Date.parse('2025-01-01T00:00:00.000Z');

function pick<T>(rand: () => number, list: readonly T[]): T {
  const v = list[Math.floor(rand() * list.length)];
  if (v === undefined) throw new Error('empty list');
  return v;
}

function money(amount: number): number {
  return Math.round(amount * 100) / 100;
}

/**
 * Deterministic data set: groups spread over the marketplaces, users with memberships,
 * and Connec! organizations, people (referencing organizations), items, invoices (lines
 * referencing people and items) and payments (referencing invoices).
 */
export function seedData(platform: Platform, options: SeedOptions): SeedSummary {
  const store = platform.store;
  const total = Math.max(0, Math.floor(options.records));
  const rand = createRandom(options.random ?? total + 1);
  const marketplaces = [...store.marketplaces.keys()];
  const groupCount = Math.max(1, options.groups ?? Math.min(50, Math.max(2, Math.ceil(total / 2000))));
  const byCollection: Record<string, number> = { organizations: 0, people: 0, items: 0, invoices: 0, payments: 0 };
  let tick = 0;
  const stamp = () => new Date(SEED_EPOCH + 1000 * tick++).toISOString();
  const groups: Group[] = [];
  const users: User[] = [];
  return store.transaction(() => {
    for (let g = 0; g < groupCount; g++) {
      const [city, , country, timezone] = pick(rand, CITIES);
      const name = `${pick(rand, COMPANY_A)} ${pick(rand, COMPANY_B)} ${pick(rand, SUFFIX)}`;
      const id = `cld-sbx${g + 1}`;
      const created = stamp();
      const group: Group = {
        id,
        name,
        email: `admin@${name.toLowerCase().replace(/[^a-z]+/g, '')}.example.com`,
        marketplace: marketplaces[g % marketplaces.length] ?? platform.defaultMarketplace.name,
        orgUid: `org-sbx${g + 1}`,
        hasCreditCard: rand() < 0.6,
        freeTrialEndAt: new Date(SEED_EPOCH + (30 + g) * 86400_000).toISOString(),
        currency: CURRENCY[country] ?? 'USD',
        country,
        city,
        timezone,
        status: 'running',
        mainAccounting: pick(rand, ['quickbooks', 'xero', 'myob', null] as const),
        metadata: {},
        resellerId: null,
        createdAt: created,
        updatedAt: created,
      };
      store.putGroup(group);
      groups.push(group);
    }
    const makeUser = (i: number): User => {
      const first = pick(rand, FIRST);
      const last = pick(rand, LAST);
      const created = stamp();
      const user: User = {
        id: `usr-sbx${i}`,
        name: first,
        surname: last,
        email: `${first}.${last}.${i}`.toLowerCase().replace(/[^a-z0-9.]+/g, '') + '@example.com',
        companyName: `${pick(rand, COMPANY_A)} ${pick(rand, COMPANY_B)}`,
        country: pick(rand, CITIES)[2],
        password: 'password',
        createdAt: created,
        updatedAt: created,
      };
      store.putUser(user);
      users.push(user);
      return user;
    };
    // usr-sbx1 belongs to the first two groups of each marketplace (so the IdP shows a group choice).
    const multi = makeUser(1);
    const perMarketplace = new Map<string, number>();
    for (const group of groups) {
      const seen = perMarketplace.get(group.marketplace) ?? 0;
      perMarketplace.set(group.marketplace, seen + 1);
      if (seen < 2) store.putMembership({ groupId: group.id, userId: multi.id, role: 'Super Admin' });
      for (let k = 0; k < 2; k++) {
        const u = makeUser(users.length + 1);
        store.putMembership({ groupId: group.id, userId: u.id, role: ROLES[k] ?? 'Member' });
      }
      const billCreated = stamp();
      store.putBill({
        id: `bill-${group.id.slice(4)}a`,
        groupId: group.id,
        priceCents: 2900,
        description: 'Monthly subscription',
        currency: group.currency,
        units: 1,
        periodStartedAt: new Date(SEED_EPOCH).toISOString(),
        periodEndedAt: new Date(SEED_EPOCH + 30 * 86400_000).toISOString(),
        thirdParty: false,
        status: 'invoiced',
        createdAt: billCreated,
        updatedAt: billCreated,
      });
      store.putBill({
        id: `bill-${group.id.slice(4)}b`,
        groupId: group.id,
        priceCents: 450,
        description: 'SMS credits',
        currency: group.currency,
        units: 3,
        periodStartedAt: null,
        periodEndedAt: null,
        thirdParty: true,
        status: 'submitted',
        createdAt: billCreated,
        updatedAt: billCreated,
      });
    }

    let created = 0;
    const put = (group: Group, collection: string, data: JsonObject): ConnecRecord => {
      const at = stamp();
      const record: ConnecRecord = { id: seededUuid(rand), groupId: group.id, collection, data, createdAt: at, updatedAt: at };
      store.putRecord(record);
      byCollection[collection] = (byCollection[collection] ?? 0) + 1;
      created++;
      return record;
    };
    for (let gi = 0; gi < groups.length; gi++) {
      const group = groups[gi];
      if (!group) continue;
      const share = Math.floor(total / groups.length) + (gi < total % groups.length ? 1 : 0);
      const nOrg = Math.max(share > 0 ? 1 : 0, Math.round(share * 0.15));
      const nPeople = Math.round(share * 0.25);
      const nItems = Math.max(share > 2 ? 1 : 0, Math.round(share * 0.1));
      const nPayments = Math.round(share * 0.15);
      const nInvoices = Math.max(0, share - nOrg - nPeople - nItems - nPayments);
      const orgs: ConnecRecord[] = [];
      const people: ConnecRecord[] = [];
      const items: ConnecRecord[] = [];
      const invoices: ConnecRecord[] = [];
      for (let i = 0; i < nOrg; i++) {
        const [city, region, country] = pick(rand, CITIES);
        const name = `${pick(rand, COMPANY_A)} ${pick(rand, COMPANY_B)} ${i + 1}`;
        const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '');
        orgs.push(
          put(group, 'organizations', {
            name,
            code: `ORG${i + 1}`,
            status: rand() < 0.05 ? 'ARCHIVED' : 'ACTIVE',
            industry: pick(rand, INDUSTRY),
            is_customer: rand() < 0.7,
            is_supplier: rand() < 0.3,
            is_lead: rand() < 0.1,
            address: { billing: { line1: `${1 + Math.floor(rand() * 200)} Main Street`, city, region, postal_code: String(1000 + Math.floor(rand() * 8999)), country } },
            email: { address: `contact@${slug}.example.com` },
            phone: { landline: `+61 2 ${1000 + Math.floor(rand() * 8999)} ${1000 + Math.floor(rand() * 8999)}` },
            website: { url: `https://${slug}.example.com` },
          }),
        );
      }
      for (let i = 0; i < nPeople; i++) {
        const first = pick(rand, FIRST);
        const last = pick(rand, LAST);
        const org = orgs.length > 0 ? pick(rand, orgs) : undefined;
        people.push(
          put(group, 'people', {
            code: `PE${i + 1}`,
            title: pick(rand, ['Mr.', 'Ms.', 'Dr.', 'Mx.']),
            first_name: first,
            last_name: last,
            job_title: pick(rand, ['CEO', 'Accountant', 'Buyer', 'Engineer', 'Manager', 'Sales rep']),
            organization_id: org ? org.id : null,
            status: 'ACTIVE',
            is_customer: rand() < 0.8,
            is_supplier: rand() < 0.2,
            is_lead: false,
            email: { address: `${first}.${last}.${i}`.toLowerCase().replace(/[^a-z0-9.]+/g, '') + '@example.com' },
            phone_work: { landline: `+1 555 ${1000 + Math.floor(rand() * 8999)}` },
          }),
        );
      }
      for (let i = 0; i < nItems; i++) {
        const price = money(5 + rand() * 495);
        items.push(
          put(group, 'items', {
            code: `IT${i + 1}`,
            name: `${pick(rand, PRODUCTS)} ${i + 1}`,
            description: 'Seeded item',
            status: 'ACTIVE',
            is_inventoried: rand() < 0.5,
            quantity_available: Math.floor(rand() * 500),
            sale_price: { net_amount: price, tax_rate: 10, total_amount: money(price * 1.1), currency: group.currency },
            purchase_price: { net_amount: money(price * 0.6), currency: group.currency },
          }),
        );
      }
      for (let i = 0; i < nInvoices; i++) {
        const person = people.length > 0 ? pick(rand, people) : undefined;
        const nLines = 1 + Math.floor(rand() * 3);
        const lines: JsonObject[] = [];
        let totalNet = 0;
        for (let l = 0; l < nLines; l++) {
          const item = items.length > 0 ? pick(rand, items) : undefined;
          const quantity = 1 + Math.floor(rand() * 10);
          const unit = money(5 + rand() * 200);
          totalNet += unit * quantity;
          lines.push({ id: seededUuid(rand), line_number: l + 1, item_id: item ? item.id : null, description: item ? String(item.data.name) : 'Service', quantity, unit_price: { net_amount: unit, tax_rate: 10, total_amount: money(unit * 1.1) } });
        }
        const day = new Date(SEED_EPOCH + Math.floor(rand() * 365) * 86400_000).toISOString().slice(0, 10);
        invoices.push(
          put(group, 'invoices', {
            type: 'CUSTOMER',
            status: pick(rand, ['DRAFT', 'SUBMITTED', 'AUTHORISED', 'PAID']),
            transaction_number: `INV-${String(i + 1).padStart(6, '0')}`,
            transaction_date: `${day}T00:00:00Z`,
            title: `Invoice ${i + 1}`,
            person_id: person ? person.id : null,
            organization_id: person && typeof person.data.organization_id === 'string' ? person.data.organization_id : null,
            lines,
            amount: { net_amount: money(totalNet), tax_amount: money(totalNet * 0.1), total_amount: money(totalNet * 1.1), currency: group.currency },
            balance: money(totalNet * 1.1),
          }),
        );
      }
      for (let i = 0; i < nPayments; i++) {
        const invoice = invoices.length > 0 ? pick(rand, invoices) : undefined;
        const amount = invoice && typeof invoice.data.balance === 'number' ? invoice.data.balance : money(10 + rand() * 500);
        put(group, 'payments', {
          type: 'CUSTOMER',
          status: 'ACTIVE',
          transaction_number: `PAY-${String(i + 1).padStart(6, '0')}`,
          transaction_date: new Date(SEED_EPOCH + Math.floor(rand() * 365) * 86400_000).toISOString(),
          title: `Payment ${i + 1}`,
          person_id: invoice && typeof invoice.data.person_id === 'string' ? invoice.data.person_id : null,
          currency: group.currency,
          amount: { total_amount: amount, currency: group.currency },
          payment_lines: [
            { id: seededUuid(rand), amount, linked_transactions: invoice ? [{ id: invoice.id, class: 'Invoice', applied_amount: amount }] : [] },
          ],
        });
      }
    }
    for (const r of store.records.values()) store.clock.observe(r.updatedAt);
    return { groups: groups.length, users: users.length, records: created, byCollection };
  });
}
