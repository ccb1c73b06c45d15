/**
 * A minimal typed event emitter. A throwing handler is reported to `onError` and never reaches the
 * emitter's caller: one bad subscriber must not take a connection down.
 */
export class Emitter<E extends { [K in keyof E]: (...args: never[]) => void }> {
  private readonly handlers = new Map<keyof E, Set<E[keyof E]>>();

  constructor(private readonly onError: (err: unknown) => void = () => {}) {}

  on<K extends keyof E>(event: K, handler: E[K]): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    for (const handler of this.handlers.get(event) ?? []) {
      try {
        (handler as (...a: Parameters<E[K]>) => void)(...args);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}
