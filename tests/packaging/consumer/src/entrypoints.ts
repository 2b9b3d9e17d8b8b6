/**
 * Every public entry point, as an app imports it from the installed packages. The
 * `@ts-expect-error` lines prove the declarations carry real types: were any of them `any`,
 * the expected error would not occur and tsc would fail on the unused directive.
 */
import { type ConnecClient, createConnecClient, parseNotification } from '@org/connec-client';
import { type CollectionName, Organization, schemaFor } from '@org/connec-client/entities';
import { type MongoStorageAdapter, mongoAdapter } from '@org/maestrano-adapter-mongo';
import { migrate, prismaAdapter, schemaFragmentPath } from '@org/maestrano-adapter-prisma';
import { type Sandbox, startSandbox } from '@org/maestrano-sandbox';
import { ConfigError, createMaestrano, defineConnector, defineEntity, type Maestrano, memoryAdapter } from '@org/maestrano-sdk';
import { metadataDocument, ResponseValidator } from '@org/maestrano-sdk/sso';
import { createTestIdp } from '@org/maestrano-sdk/testing';

export const organizations = defineEntity<'organizations', { name: string }>({
  name: 'companies',
  connec: 'organizations',
  direction: 'inbound',
  toLocal: (org) => ({ name: org.name ?? '' }),
  local: { create: async () => ({ id: 'c1' }), update: async () => undefined },
});

defineEntity<'organizations', { name: string }>({
  name: 'typo',
  connec: 'organizations',
  direction: 'inbound',
  // @ts-expect-error `nmae` is not a field of a Connec! organization: only the schema's fields are
  // typed (`org.name` is `string | null | undefined`), any other key is `unknown` (the record's
  // loose index signature), which is not the `string` the local record needs. Under an `any`
  // record this would compile.
  toLocal: (org) => ({ name: org.nmae }),
  local: { create: async () => ({ id: 'c1' }), update: async () => undefined },
});

// @ts-expect-error an inbound entity cannot declare toConnec
defineEntity({ name: 'x', connec: 'people', direction: 'inbound', toConnec: () => ({}), toLocal: () => ({}), local: { create: async () => ({ id: '1' }), update: async () => undefined } });

// @ts-expect-error not a Connec! collection
const wrong: CollectionName = 'peoples';

export const connector = defineConnector({ entities: [organizations] });
export const parsed = Organization.safeParse({ name: 'Acme' }).success;
export const schema = schemaFor('people');
export const used = [wrong, createConnecClient, parseNotification, mongoAdapter, migrate, prismaAdapter, schemaFragmentPath, startSandbox, ConfigError, createMaestrano, memoryAdapter, metadataDocument, ResponseValidator, createTestIdp];
export type Used = [ConnecClient, MongoStorageAdapter, Sandbox, Maestrano];
