export { serverOptions, limitConnections, limitFromEnv, type ServerLimits } from './server-options.ts';
export {
  readCappedBody,
  bodyPending,
  declaredBytes,
  BodyBudget,
  BodyBudgetError,
  BodyTooLargeError,
  BodyAbortedError,
} from './body.ts';
export { watchBodyProgress } from './watchdog.ts';
export { answer, closeStalled, closeWhenAnsweredEarly, type Answer } from './refuse.ts';
export { answerClientErrors, type ErrorBody } from './client-error.ts';
