// The runs table's rows, held by page: page 0 arrives with the table reply, the others are
// fetched when a row of theirs is wanted (or ahead of the scroll). New data drops every page;
// a page fetched for older data is dropped on arrival.

export type FetchRows<Row> = (offset: number, limit: number) => Promise<Row[]>;

export class Pages<Row> {
  private pages = new Map<number, Row[]>();
  /** Pages of the previous data, shown while their fresh copies load (a live update). */
  private stale = new Map<number, Row[]>();
  private loading = new Set<number>();
  private generation = 0;
  private size = 1;
  total = 0;

  /** `loaded` is called when a fetched page arrives (to draw its rows). */
  constructor(
    private readonly fetch: FetchRows<Row>,
    private readonly loaded: () => void,
  ) {}

  /** New data: `total` rows, `first` is page 0 (`pageSize` rows a page). `keep`: the same
   * table with fresher rows, so the old pages stand in until their new copies arrive. */
  reset(total: number, first: Row[], pageSize: number, keep = false): void {
    this.generation++;
    this.total = total;
    this.size = Math.max(1, pageSize);
    this.stale = keep ? new Map([...this.stale, ...this.pages]) : new Map();
    this.pages = new Map([[0, first]]);
    this.loading.clear();
  }

  /** Row `index`, or undefined while its page loads (a stale copy if there is one). */
  row(index: number): Row | undefined {
    const page = Math.floor(index / this.size);
    const rows = this.pages.get(page);
    if (rows) return rows[index - page * this.size];
    this.load(page);
    return this.stale.get(page)?.[index - page * this.size];
  }

  /** Fetch the page after the one holding row `last` (ahead of the scroll). */
  prefetch(last: number): void {
    const ahead = Math.floor((last + this.size) / this.size);
    if (ahead * this.size < this.total) this.load(ahead);
  }

  private load(page: number): void {
    if (this.loading.has(page) || this.pages.has(page)) return;
    this.loading.add(page);
    const generation = this.generation;
    this.fetch(page * this.size, this.size)
      .then((rows) => {
        if (generation !== this.generation) return;
        this.pages.set(page, rows);
        this.stale.delete(page);
        this.loading.delete(page);
        this.loaded();
      })
      .catch(() => {
        // a failed page may be asked for again
        if (generation === this.generation) this.loading.delete(page);
      });
  }
}
