/**
 * Frames waiting for one peer's connection, first in first out. Ordinary frames count
 * against a byte and a message limit that the owner checks before pushing; a snapshot frame
 * is counted apart (its owner lets at most one wait or travel per peer), because one
 * snapshot may be larger than the whole budget for ordinary traffic.
 */
export interface QueuedFrame {
  frame: Buffer;
  /** The snapshot's index for a Snap message, else null. */
  snapshotIndex: number | null;
}

export class SendQueue {
  private items: QueuedFrame[] = [];
  private head = 0;
  private ordinaryBytes = 0;
  private ordinaryCount = 0;
  private snapshotBytes = 0;

  /** Bytes of ordinary (non-snapshot) frames waiting. */
  get bytes(): number {
    return this.ordinaryBytes;
  }

  /** Ordinary (non-snapshot) frames waiting. */
  get count(): number {
    return this.ordinaryCount;
  }

  /** All bytes waiting, snapshot included. */
  get totalBytes(): number {
    return this.ordinaryBytes + this.snapshotBytes;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: QueuedFrame): void {
    this.items.push(item);
    this.account(item, 1);
  }

  shift(): QueuedFrame | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.head++;
    // Compact now and then instead of Array.shift(), which moves every element each time.
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.account(item, -1);
    return item;
  }

  /** Removes the waiting snapshot frame, if any; true when one was removed. */
  removeSnapshot(): boolean {
    const i = this.items.findIndex((it, k) => k >= this.head && it.snapshotIndex !== null);
    if (i < 0) return false;
    this.account(this.items[i], -1);
    this.items.splice(i, 1);
    return true;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.ordinaryBytes = 0;
    this.ordinaryCount = 0;
    this.snapshotBytes = 0;
  }

  private account(item: QueuedFrame, sign: 1 | -1): void {
    if (item.snapshotIndex !== null) {
      this.snapshotBytes += sign * item.frame.length;
    } else {
      this.ordinaryBytes += sign * item.frame.length;
      this.ordinaryCount += sign;
    }
  }
}
