/** Events emitted while a boot runs: one per step, then the outcome. */
export type BootEvent =
  | { type: 'step-start'; step: string; title: string }
  | { type: 'step-done'; step: string; title: string; durationMs: number }
  | { type: 'step-failed'; step: string; title: string; durationMs: number; error: string }
  | { type: 'rollback'; steps: string[] }
  | { type: 'ready'; name: string; pid1: number; monitor: number; durationMs: number };

export type BootEventListener = (event: BootEvent) => void;
