/**
 * Task monitors (DSP0266 "Asynchronous operations"): an action answered 202 with a Location;
 * GET of the monitor answers 202 while the task runs, then 200 with the Task (TaskState Completed).
 */
import type { TaskView } from './resources.js';

interface Entry {
  view: TaskView;
  isDone: () => boolean;
}

export class TaskStore {
  private readonly tasks = new Map<string, Entry>();
  private nextId = 1;

  constructor(private readonly idPrefix: string) {}

  create(name: string, isDone: () => boolean): TaskView {
    const view: TaskView = { id: `${this.idPrefix}${this.nextId++}`, name, state: 'Running', startedAt: Date.now() };
    this.tasks.set(view.id, { view, isDone });
    return view;
  }

  /** The task now (a running task whose work is done becomes Completed on this read). */
  get(id: string): TaskView | undefined {
    const entry = this.tasks.get(id);
    if (entry === undefined) return undefined;
    if (entry.view.state === 'Running' && entry.isDone()) {
      entry.view.state = 'Completed';
      entry.view.endedAt = Date.now();
    }
    return entry.view;
  }

  ids(): string[] {
    return [...this.tasks.keys()];
  }
}
