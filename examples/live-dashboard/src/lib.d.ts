// The hub's shared demo scripts (apps/herald/public/lib/), served beside the page at /lib/ and left
// out of the bundle: ../build.mjs maps `demo-lib/<file>` to `/lib/<file>`.
declare module 'demo-lib/charts.js' {
  export interface ChartSeries {
    readonly values: readonly number[];
    readonly color: string;
    readonly fill?: boolean;
  }
  export function lineChart(
    container: HTMLElement,
    series: readonly ChartSeries[],
    options?: { points?: number; minMax?: number; integer?: boolean },
  ): void;
  export function formatNumber(value: number): string;
}

declare module 'demo-lib/demo.js' {
  export function demoToken(app: string, user?: string): Promise<{ token: string }>;
  export function problemOf(error: { code: string; message: string; cause?: unknown } | undefined): string | undefined;
}
