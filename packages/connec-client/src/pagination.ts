/**
 * `list()` results: a {@link PagePromise} is awaitable (the first page) and async-iterable (every
 * record of every page, fetched one page at a time: at most one page is held in memory).
 */
import { PayloadValidationError, ResponseValidationError } from './errors.js';

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

/** Internal: fetch one page at a URL and compute where the next one is. */
export type PageFetcher<T> = (url: string) => Promise<{ data: T[]; pagination: Pagination; nextUrl: string | undefined }>;

class ListPage<T> implements Page<T> {
  readonly data: T[];
  readonly pagination: Pagination;
  readonly nextUrl: string | undefined;
  readonly #fetcher: PageFetcher<T>;

  constructor(fetched: Awaited<ReturnType<PageFetcher<T>>>, fetcher: PageFetcher<T>) {
    this.data = fetched.data;
    this.pagination = fetched.pagination;
    this.nextUrl = fetched.nextUrl;
    this.#fetcher = fetcher;
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
    return loadPage(this.nextUrl, this.#fetcher);
  }
}

async function loadPage<T>(url: string, fetcher: PageFetcher<T>): Promise<Page<T>> {
  return new ListPage(await fetcher(url), fetcher);
}

/** Hard ceiling of `toArray({ limit })`. */
export const MAX_TO_ARRAY_LIMIT = 100_000;

export class PagePromise<T> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  readonly #firstUrl: string;
  readonly #fetcher: PageFetcher<T>;
  #first: Promise<Page<T>> | undefined;

  constructor(firstUrl: string, fetcher: PageFetcher<T>) {
    this.#firstUrl = firstUrl;
    this.#fetcher = fetcher;
  }

  #firstPage(): Promise<Page<T>> {
    this.#first ??= loadPage(this.#firstUrl, this.#fetcher);
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

  /** Every page in order. A page already awaited is reused, then released. */
  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    const first = this.#first ?? loadPage(this.#firstUrl, this.#fetcher);
    this.#first = undefined;
    let url: string | undefined;
    {
      const page = await first;
      url = page.nextUrl;
      yield page;
    }
    const seen = new Set<string>([this.#firstUrl]);
    while (url !== undefined) {
      if (seen.has(url)) {
        throw new ResponseValidationError(`Connec! pagination loops back to an earlier page (${url})`, {
          issues: [{ path: 'pagination/next', message: 'repeats an earlier page URL' }],
        });
      }
      seen.add(url);
      const fetched = await this.#fetcher(url);
      url = fetched.nextUrl;
      yield new ListPage(fetched, this.#fetcher);
    }
  }

  /** Every record of every page, one page in memory at a time. */
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
