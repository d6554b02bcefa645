/**
 * `@herald/resumable-stream`: Vercel's `resumable-stream` interface (the backend of the AI SDK's
 * `useChat({ resume: true })`) on Herald's Durable Streams. Swap the import; pass Herald's URL and
 * a token. See docs/durable-streams.md, "Resumable AI SDK streams".
 */
export {
  createResumableStreamContext,
  type CreateResumableStreamContextOptions,
  type ResumableStreamContext,
} from './context.js';
