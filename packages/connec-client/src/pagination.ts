/**
 * `list()` results: a {@link PagePromise} is awaitable (the first page) and async-iterable (every
 * record of every page, fetched one page at a time: at most one page is held in memory).
 */
import { PayloadValidationError, ResponseValidationError, redactUrl } from './errors.js';

/** The `pagination` object of a list answer. Only `next` and `total` are proven keys. */
export interface Pagination {
  /** Absolute URL of the next page; absent on the last page. */
  next?: string | undefined;
  total?: number | undefined;
  skip?: number | undefined;
  top?: number | undefined;
  [key: string]: unknown;
}

export interface Page<T> {
  readonly data: T[];
  readonly pagination: Pagination;
  /** `pagination.total`, when the server sent it. */
  readonly total: number | undefined;
  /** The URL of the next page, or `undefined` on the last page. */
  readonly nextUrl: string | undefined;
  hasNextPage(): boolean;
  /** Fetch the next page. Throws `PayloadValidationError` on the last page. */
  getNextPage(): Promise<Page<T>>;
}

/**
 * Internal: one page in two steps. The loader resolves once the body has been read (kept as
 * text); calling the result parses it and locates the next page; `decode()` then validates the
 * records (the expensive part). So the next page's request can be in flight while the current
 * page is validated and consumed, and the next page waits as text, not as records.
 */
export interface PageLoad<T> {
  pagination: Pagination;
  nextUrl: string | undefined;
  /** Identifies the page's records (size, first and last id), to notice a server that repeats a page. */
  fingerprint?: string | undefined;
  decode(): T[];
}

const fingerprints = new WeakMap<object, string>();
/** Consecutive repeats of a page after which the server is taken to ignore `$skip`. */
const MAX_PAGE_REPEATS = 3;
export type PageLoader<T> = (url: string, signal?: AbortSignal) => Promise<() => PageLoad<T>>;

class ListPage<T> implements Page<T> {
  readonly data: T[];
  readonly pagination: Pagination;
  readonly nextUrl: string | undefined;
  readonly #loader: PageLoader<T>;

  constructor(data: T[], load: PageLoad<T>, loader: PageLoader<T>) {
    this.data = data;
    this.pagination = load.pagination;
    this.nextUrl = load.nextUrl;
    this.#loader = loader;
    if (load.fingerprint !== undefined) fingerprints.set(this, load.fingerprint);
  }

  get total(): number | undefined {
    return this.pagination.total;
  }

  hasNextPage(): boolean {
    return this.nextUrl !== undefined;
  }

  async getNextPage(): Promise<Page<T>> {
    if (this.nextUrl === undefined) {
      throw new PayloadValidationError('There is no next page', {
        issues: [{ path: 'pagination/next', message: 'last page' }],
      });
    }
    const load = (await this.#loader(this.nextUrl))();
    return new ListPage(load.decode(), load, this.#loader);
  }
}

/** Hard ceiling of `toArray({ limit })`. */
export const MAX_TO_ARRAY_LIMIT = 100_000;

export interface PagePromiseOptions {
  /**
   * Request the next page while the current one is validated and consumed (one request in flight
   * at a time; the next page is held as its raw body, not as records). @default true
   */
  readAhead?: boolean;
}

export class PagePromise<T> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  readonly #firstUrl: string;
  readonly #loader: PageLoader<T>;
  readonly #readAhead: boolean;
  #first: Promise<Page<T>> | undefined;

  constructor(firstUrl: string, loader: PageLoader<T>, options: PagePromiseOptions = {}) {
    this.#firstUrl = firstUrl;
    this.#loader = loader;
    this.#readAhead = options.readAhead ?? true;
  }

  #firstPage(): Promise<Page<T>> {
    this.#first ??= this.#loader(this.#firstUrl).then((read) => {
      const load = read();
      return new ListPage(load.decode(), load, this.#loader);
    });
    return this.#first;
  }

  // biome-ignore lint/suspicious/noThenProperty: a PagePromise is deliberately awaitable (first page).
  then<R1 = Page<T>, R2 = never>(
    onfulfilled?: ((value: Page<T>) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#firstPage().then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<Page<T> | R> {
    return this.#firstPage().catch(onrejected);
  }

  /**
   * Every page in order. A first page already awaited is reused. Only the page being consumed is
   * held as records; with `readAhead`, the next page's request runs meanwhile and is cancelled if
   * the iteration stops early.
   */
  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    const seen = new Set<string>([this.#firstUrl]);
    let pending: Promise<() => PageLoad<T>> | undefined;
    let cancel: AbortController | undefined;
    let page: Page<T> | undefined;
    if (this.#first) {
      page = await this.#first;
      this.#first = undefined;
    }
    let url: string | undefined = this.#firstUrl;
    let previous: string | undefined;
    let repeats = 0;
    try {
      while (true) {
        let load: PageLoad<T> | undefined;
        if (page === undefined) {
          const read: () => PageLoad<T> = await (pending ?? this.#loader(url));
          pending = undefined;
          cancel = undefined;
          load = read();
        }
        const next: string | undefined = page ? page.nextUrl : load?.nextUrl;
        if (next !== undefined) {
          if (seen.has(next)) {
            throw new ResponseValidationError(`Connec! pagination loops back to an earlier page (${redactUrl(next)})`, {
              issues: [{ path: 'pagination/next', message: 'repeats an earlier page URL' }],
            });
          }
          seen.add(next);
          if (this.#readAhead) {
            cancel = new AbortController();
            pending = this.#loader(next, cancel.signal);
            // Observed when awaited; until then a failure must not be an unhandled rejection.
            pending.catch(() => undefined);
          }
        }
        const fingerprint = page ? fingerprints.get(page) : load?.fingerprint;
        // One repeat happens on a legitimate server: records edited between two reads shift a
        // sorted listing by exactly a page (pages of one record: a single edit). A server that
        // ignores $skip repeats it every time (and is refused after a few requests).
        repeats = fingerprint !== undefined && fingerprint === previous ? repeats + 1 : 0;
        if (repeats >= MAX_PAGE_REPEATS) {
          throw new ResponseValidationError(`Connec! answered the same page again (${redactUrl(url)}): it ignores $skip or loops`, {
            issues: [{ path: 'pagination', message: 'the page repeats the previous one' }],
          });
        }
        previous = fingerprint;
        if (page === undefined && load && repeats === 0) page = new ListPage(load.decode(), load, this.#loader);
        // A repeated page is not handed over again: its records were just yielded.
        if (page && repeats === 0) yield page;
        page = undefined;
        if (next === undefined) return;
        url = next;
      }
    } finally {
      cancel?.abort();
    }
  }

  /** Every record of every page; only the current page is held as records. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) {
      yield* page.data;
    }
  }

  /** Collect records into an array. `limit` is required (at most 100,000); iteration stops there. */
  async toArray(options: { limit: number }): Promise<T[]> {
    const limit = options?.limit;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_TO_ARRAY_LIMIT) {
      throw new PayloadValidationError(`toArray() needs an integer limit between 1 and ${MAX_TO_ARRAY_LIMIT}`, {
        issues: [{ path: 'limit', message: `expected an integer in 1..${MAX_TO_ARRAY_LIMIT}` }],
      });
    }
    const out: T[] = [];
    for await (const page of this.pages()) {
      for (const record of page.data) {
        out.push(record);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }
}
