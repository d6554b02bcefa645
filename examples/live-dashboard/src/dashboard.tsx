/**
 * The page: tiles with the latest sample, four charts of the last two minutes, and what is wrong
 * when something is (no token, a refused channel, a publisher that stopped).
 */
import type { ClientState, Publication } from '@herald/client';
import { useChannel, useConnectionState } from '@herald/react';
import { useEffect, useReducer, useRef, useState, type ReactNode } from 'react';
import { formatNumber, lineChart, type ChartSeries } from 'demo-lib/charts.js';
import { problemOf } from 'demo-lib/demo.js';
import { addSample, emptySeries, POINTS, type Sample } from './samples.js';

const CHANNEL = 'dashboard:hub';
/** Stale after this many of the publisher's intervals without a sample, and never sooner than STALE_MIN_MS. */
const STALE_INTERVALS = 3;
const STALE_MIN_MS = 3000;

export function Dashboard(): ReactNode {
  const series = useRef(emptySeries());
  const last = useRef<{ sample: Sample; ts: number }>(undefined);
  const arrivals = useRef<number[]>([]);
  // A replay delivers many samples at once: draw once per frame, not once per sample.
  const [, redraw] = useReducer((n: number) => n + 1, 0);
  const frame = useRef(0);
  useEffect(() => () => cancelAnimationFrame(frame.current), []);

  const channel = useChannel<Sample>(
    CHANNEL,
    (pub: Publication<Sample>) => {
      if (pub.event !== 'sample') return;
      addSample(series.current, pub.data);
      last.current = { sample: pub.data, ts: pub.ts };
      arrivals.current = [...arrivals.current, Date.now()].slice(-10);
      if (frame.current === 0)
        frame.current = requestAnimationFrame(() => {
          frame.current = 0;
          redraw();
        });
    },
    // The handler keeps the series; open with the samples the channel's history still holds.
    { keep: 0, rewind: POINTS },
  );
  const staleForS = useStaleness(arrivals);
  const connection = useConnectionState();
  const problem =
    useConnectionProblem(connection) ?? (channel.error && `Cannot follow ${CHANNEL}: ${channel.error.message}`);
  const s = series.current;
  const sample = last.current?.sample;
  const c = sample?.connections ?? {};
  return (
    <>
      <header className="app-header">
        <div className="title">
          <a className="back" href="/">
            Herald
          </a>
          <h1>Live dashboard</h1>
          <span className="sub">
            any transport · channel <code>{CHANNEL}</code> · one sample a second · React
          </span>
        </div>
        <ConnectionPill state={connection} />
      </header>
      <p className="banner" hidden={problem === undefined}>
        {problem}
      </p>
      <p className="banner stale" id="stale" hidden={staleForS === undefined}>
        {staleForS !== undefined &&
          `No new sample for ${staleForS} s: these figures are stale. Is the publisher running? ` +
            'HERALD_API_KEY=… node examples/live-dashboard/publish-metrics.mjs'}
      </p>

      <main className="board">
        <section className="waiting card" id="waiting" hidden={sample !== undefined}>
          <h2>Waiting for samples</h2>
          <p>
            This page shows what a backend publishes to <code>{CHANNEL}</code>. Start the publisher, which reads the
            hub&apos;s own metrics once a second:
          </p>
          <pre>HERALD_API_KEY=… node examples/live-dashboard/publish-metrics.mjs</pre>
        </section>

        <section className="tiles">
          <Tile title="CPU" id="cpu" value={sample?.cpuPercent.toFixed(1)} unit="%">
            <span id="loop">{sample ? `event loop p99 ${sample.loopLagMs.toFixed(1)} ms` : 'event loop –'}</span>
          </Tile>
          <Tile title="Memory" id="rss" value={sample && String(Math.round(sample.rssMb))} unit="MB">
            <span id="heap">{sample ? `heap ${Math.round(sample.heapMb)} MB` : 'heap –'}</span>
          </Tile>
          <Tile
            title="Connections"
            id="connections"
            value={sample && formatNumber((c.websocket ?? 0) + (c.sse ?? 0) + (c.poll ?? 0) + (c.socketio ?? 0))}
          >
            <span id="by-transport">
              {sample ? `WebSocket ${c.websocket ?? 0} · SSE ${c.sse ?? 0} · poll ${c.poll ?? 0}` : '–'}
            </span>
          </Tile>
          <Tile
            title="Throughput"
            id="deliveries"
            value={sample && formatNumber(sample.deliveriesPerSecond)}
            unit="deliveries/s"
          >
            <span id="publications">{`${sample ? formatNumber(sample.publicationsPerSecond) : '–'} publications/s`}</span>
          </Tile>
        </section>

        <section className="charts">
          <Chart title="CPU %" id="chart-cpu" series={[{ values: s.cpu, color: '#e8590c' }]} minMax={10} />
          <Chart
            title="Memory (MB)"
            id="chart-memory"
            series={[
              { values: s.rss, color: '#ae3ec9', label: 'resident' },
              { values: s.heap, color: '#0c8599', fill: false, label: 'heap' },
            ]}
            minMax={10}
          />
          <Chart
            title="Connections"
            id="chart-connections"
            series={[
              { values: s.websocket, color: '#4263eb', fill: false, label: 'WebSocket' },
              { values: s.sse, color: '#0ca678', fill: false, label: 'SSE' },
              { values: s.poll, color: '#f08c00', fill: false, label: 'long-poll' },
            ]}
            integer
          />
          <Chart
            title="Throughput (per second)"
            id="chart-throughput"
            series={[
              { values: s.deliveries, color: '#0ca678', label: 'deliveries' },
              { values: s.publications, color: '#4263eb', fill: false, label: 'publications' },
            ]}
          />
        </section>
        <p className="footnote muted" id="footnote">
          {last.current &&
            `Last sample ${new Date(last.current.ts).toLocaleTimeString()} · ${s.cpu.length} of ${POINTS} points`}
        </p>
      </main>
    </>
  );
}

function Tile(props: {
  title: string;
  id: string;
  value: string | undefined;
  unit?: string;
  children: ReactNode;
}): ReactNode {
  return (
    <article className="card tile">
      <h2>{props.title}</h2>
      <p className="big">
        <span id={props.id}>{props.value ?? '–'}</span>
        {props.unit && <small>{props.unit}</small>}
      </p>
      <p className="muted">{props.children}</p>
    </article>
  );
}

interface LabeledSeries extends ChartSeries {
  readonly label?: string;
}

/** An SVG line chart redrawn by the shared chart script after every render (and on resize). */
function Chart(props: {
  title: string;
  id: string;
  series: LabeledSeries[];
  minMax?: number;
  integer?: boolean;
}): ReactNode {
  const box = useRef<HTMLDivElement>(null);
  const [, resized] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    window.addEventListener('resize', resized);
    return () => window.removeEventListener('resize', resized);
  }, []);
  useEffect(() => {
    if (box.current && props.series.some((x) => x.values.length > 0))
      lineChart(box.current, props.series, { points: POINTS, minMax: props.minMax, integer: props.integer });
  });
  const legend = props.series.filter((x) => x.label !== undefined);
  return (
    <article className="card">
      <header className="chart-head">
        <h2>{props.title}</h2>
        {legend.length > 1 && (
          <ul className="legend">
            {legend.map((x) => (
              <li key={x.label}>
                <i style={{ background: x.color }} />
                {x.label}
              </li>
            ))}
          </ul>
        )}
      </header>
      <div className="chart" id={props.id} ref={box} />
    </article>
  );
}

const TRANSPORTS: Record<string, string> = { websocket: 'WebSocket', sse: 'SSE', poll: 'long-polling' };

function ConnectionPill({ state: s }: { state: ClientState }): ReactNode {
  let text: string;
  switch (s.state) {
    case 'connected':
      text = `Live · ${TRANSPORTS[s.transport] ?? s.transport}`;
      break;
    case 'connecting':
      text = 'Connecting…';
      break;
    case 'disconnected':
      text = `Reconnecting in ${Math.ceil(s.retryInMs / 1000)} s`;
      break;
    default:
      text = s.error ? `Stopped: ${s.error.message}` : 'Closed';
  }
  const error = 'error' in s ? s.error : undefined;
  return (
    <span className="conn" id="conn" data-state={s.state} title={error?.message ?? ''}>
      {text}
    </span>
  );
}

/**
 * The connection problem to show: it stays up through the retries (each retry passes through
 * "connecting", which carries no error) until the connection is live again, so the reader is not
 * shown a banner that flickers away between attempts.
 */
function useConnectionProblem(s: ClientState): string | undefined {
  const [shown, setShown] = useState<string | undefined>(undefined);
  const current = problemOf('error' in s ? s.error : undefined);
  const next = s.state === 'connected' ? undefined : (current ?? shown);
  // Derived state, updated during render (React's documented pattern for "adjusting state when a prop changes").
  if (next !== shown) setShown(next);
  return next;
}

/**
 * Seconds since the last sample once that is past a few of the publisher's own intervals, else
 * undefined: the connection can be live while nothing comes (the publisher is a separate process).
 */
function useStaleness(arrivals: { readonly current: readonly number[] }): number | undefined {
  const [staleForS, setStaleForS] = useState<number | undefined>(undefined);
  useEffect(() => {
    const check = (): void => {
      const times = arrivals.current;
      if (times.length < 2) return;
      const gaps = times.slice(1).map((t, i) => t - (times[i] ?? t));
      const interval = gaps.sort((a, b) => a - b)[Math.floor(gaps.length / 2)] ?? 1000;
      const silent = Date.now() - (times.at(-1) ?? 0);
      setStaleForS(silent > Math.max(STALE_MIN_MS, STALE_INTERVALS * interval) ? Math.round(silent / 1000) : undefined);
    };
    const timer = setInterval(check, 1000);
    return () => clearInterval(timer);
  }, [arrivals]);
  useEffect(() => {
    document.body.dataset.stale = String(staleForS !== undefined);
  }, [staleForS]);
  return staleForS;
}
