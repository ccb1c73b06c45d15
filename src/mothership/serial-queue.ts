/**
 * One task at a time, in the order they were given: what keeps the control plane's decisions whole now
 * that every store call is asynchronous. A task starts when the one before it has settled, so no two
 * interleave at their awaits; a task that fails gives its caller the error and the next one still runs.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    // The queue waits for the task's end, not its success (the caller has the failure).
    this.tail = result.catch(() => undefined);
    return result;
  }
}
