import type { Tenant } from '../core/types.js';
import { consumeUrl } from './request.js';
import { SDK_VERSION } from '../internal/version.js';
import { escapeXml } from './xml.js';

/**
 * The legacy metadata document (PROTOCOL §2, RB `to_metadata` shape with the dev-platform
 * spellings added). Never contains `api.key` or any other secret; the IdP certificate is
 * public.
 */
export function metadataDocument(tenant: Tenant): Record<string, unknown> {
  return {
    environment: tenant.environment ?? tenant.name,
    marketplace: tenant.name,
    app: { host: tenant.app.host },
    api: {
      id: tenant.api.id,
      version: SDK_VERSION,
      verify_ssl_certs: true,
      lang: 'node',
      lang_version: process.versions.node,
      host: tenant.api.host,
      base: tenant.api.base,
    },
    sso: {
      enabled: tenant.sso.enabled,
      slo_enabled: tenant.sso.sloEnabled,
      init_path: tenant.sso.initPath,
      consume_path: tenant.sso.consumePath,
      creation_mode: tenant.sso.creationMode,
      idm: tenant.sso.idm,
      idp: tenant.sso.idp,
      name_id_format: tenant.sso.nameIdFormat,
      x509_fingerprint: tenant.sso.x509Fingerprint,
      x509_certificate: tenant.sso.x509Certificate,
    },
    connec: {
      enabled: tenant.connec.enabled,
      host: tenant.connec.host,
      base_path: tenant.connec.basePath,
      timeout: tenant.connec.timeoutMs / 1000,
    },
    webhook: {
      account: {
        groups_path: tenant.webhooks.account.groupPath,
        group_users_path: tenant.webhooks.account.groupUserPath,
      },
      connec: {
        notifications_path: tenant.webhooks.connec.notificationPath,
        // `entity_name -> bool`: which collections Connec! notifies (RB's default: `{}`).
        subscriptions: { ...tenant.webhooks.connec.subscriptions },
        initialization_path: tenant.webhooks.connec.initializationPath,
        external_ids: tenant.connec.externalIds,
      },
    },
  };
}

/** SP SAML metadata: entity id = api id, one HTTP-POST ACS, persistent NameID, signed assertions wanted. */
export function spMetadataXml(tenant: Tenant): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${escapeXml(tenant.api.id)}">` +
    `<md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<md:NameIDFormat>${escapeXml(tenant.sso.nameIdFormat)}</md:NameIDFormat>` +
    `<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${escapeXml(consumeUrl(tenant))}" index="1" isDefault="true"/>` +
    `</md:SPSSODescriptor>` +
    `</md:EntityDescriptor>\n`
  );
}
