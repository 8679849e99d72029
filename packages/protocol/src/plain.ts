/**
 * `Plain<T>`: a schema's input type without its open `[key: string]: unknown` index signatures
 * (what `z.looseObject` and `z.record(z.string(), z.unknown())` add), recursively. Handlers return
 * and callers pass values typed by their own interfaces, which TypeScript will not assign to an
 * index signature; the schemas still validate every value at run time.
 */
export type Plain<T> = T extends readonly (infer U)[]
  ? readonly Plain<U>[]
  : T extends object
    ? { [K in keyof T as string extends K ? (unknown extends T[K] ? never : K) : K]: Plain<T[K]> }
    : T;

/** What a handler may return or a caller pass for schema input `T`: `T` itself or `Plain<T>`. */
export type Sendable<T> = T | Plain<T>;
