/**
 * Takes a lock or a claim with `take`, giving it back with `giveBack` when `take` fails.
 *
 * A failed take may have taken all the same: the storage committed and the answer was lost
 * (the connection dropped after COMMIT). Nobody knows that owner holds it, so every later
 * take (a webhook's retry, the next login, the next import) would wait for its TTL, up to
 * minutes. `giveBack` is the owner's own release: it frees only what this owner holds, so it
 * is harmless when nothing was taken. Its failure is ignored (storage still down: the TTL
 * frees it, as before) and the take's error is thrown as it was.
 *
 * Not for takes that re-take what the owner already holds (a ledger claim's refresh around a
 * bill in doubt): giving that back would let another attempt in.
 */
export async function takeOrGiveBack<T>(take: () => Promise<T>, giveBack: () => Promise<unknown>): Promise<T> {
  try {
    return await take();
  } catch (error) {
    await giveBack().catch(() => {});
    throw error;
  }
}
