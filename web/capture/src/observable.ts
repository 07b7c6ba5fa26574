/** A value that tells its subscribers when it changes. */
export interface Observable<T> {
  /** The current value. */
  get(): T;
  /** Calls `listener` with the current value now and with every new one; returns an unsubscribe. */
  subscribe(listener: (value: T) => void): () => void;
}

/** An [`Observable`] its owner can set. */
export class Cell<T> implements Observable<T> {
  private readonly listeners = new Set<(value: T) => void>();

  constructor(private value: T) {}

  get(): T {
    return this.value;
  }

  /** Sets the value and tells every subscriber (a listener that throws does not stop the others). */
  set(value: T): void {
    this.value = value;
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch (error) {
        // A broken indicator must not break capture.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  subscribe(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    listener(this.value);
    return () => this.listeners.delete(listener);
  }
}
