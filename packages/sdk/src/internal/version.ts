// The bundler inlines this one field of the package's manifest.
import { version } from '../../package.json';

/** This package's version (`@org/maestrano-sdk`). */
export const SDK_VERSION: string = version;
