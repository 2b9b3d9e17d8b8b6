// `@org/maestrano-sdk/sso`: the SSO surface on its own (types, helpers, the module factory).
export { identityFrom } from './attributes.js';
export type { SsoIdentity } from './attributes.js';
export { RequestBinding } from './binding.js';
export type { BindingOptions } from './binding.js';
export { metadataDocument, spMetadataXml } from './metadata.js';
export { createSsoModule } from './module.js';
export type { SsoApi, SsoModule } from './module.js';
export { Provisioner } from './provisioning.js';
export type { ProvisionOptions, ProvisionResult } from './provisioning.js';
export type { BuiltAuthnRequest } from './request.js';
export { buildAuthnRequest, consumeUrl, FORWARDED_PARAMS, idpSsoUrl, initUrl, RELAY_STATE_MAX_BYTES, RETURN_TO_PARAMS } from './request.js';
export { ResponseValidator } from './response.js';
export { safeReturnPath } from './return-path.js';
export type { ResponseValidatorOptions, ValidatedAssertion } from './response.js';
export { checkSession, logoutUrl } from './session.js';
export type { InflightSessionChecks, RemoteSessionAnswer, SessionCheckFailures, SessionCheckResult } from './session.js';
export type {
  AppRecordRef,
  CompanyHandle,
  CreationMode,
  LoginArgs,
  LoginOutcome,
  OnLogin,
  ProvisioningContext,
  ProvisioningHooks,
  SeatsChange,
  SsoGroup,
  SsoMembership,
  SsoSession,
  SsoUser,
  UserHandle,
} from './types.js';
