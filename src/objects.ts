/** Small object helpers shared by the data path. */

/** Items grouped by key, groups and items in first-seen order (Map.groupBy needs Node 21). */
export function groupBy<T, V = T>(
  items: Iterable<T>,
  keyOf: (item: T) => string,
  pick: (item: T) => V = (item) => item as unknown as V,
): Map<string, V[]> {
  const groups = new Map<string, V[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(pick(item));
    else groups.set(key, [pick(item)]);
  }
  return groups;
}

/**
 * An object with every key set to null, to copy (`{ ...template }`) and then fill by key. V8 turns
 * an object into a slow hash map once more than a dozen properties are added by computed name; a
 * JSON.parse'd object, and each copy of it, keeps one fast shape for all its keys, so filling and
 * reading the copies stays cheap on per-row paths.
 */
export function nullTemplate<V>(keys: readonly string[]): Record<string, V | null> {
  return JSON.parse(JSON.stringify(Object.fromEntries(keys.map((key) => [key, null]))));
}
