// Diagnostics: the errors and warnings found in one config object.
// Validators collect every problem and return them together (as Istio's do),
// each with the field path it is about, so a user can fix everything at once.

export type Severity = 'error' | 'warning';

/** One problem found in one object. `path` reads like `spec.http[1].route[0].weight`. */
export interface Diagnostic {
  readonly severity: Severity;
  readonly path: string;
  readonly message: string;
  /** Line in the source file, when the object came from YAML text. */
  readonly line?: number;
}

/** A field path builder: `at('spec').key('http').index(1)` -> `spec.http[1]`. */
export class FieldPath {
  readonly text: string;
  constructor(text = '') {
    this.text = text;
  }
  key(name: string): FieldPath {
    // Keys that are not plain identifiers (map keys such as labels) are quoted.
    if (/^[A-Za-z_$][\w$-]*$/.test(name)) return new FieldPath(this.text ? `${this.text}.${name}` : name);
    return new FieldPath(`${this.text}[${JSON.stringify(name)}]`);
  }
  index(i: number): FieldPath {
    return new FieldPath(`${this.text}[${i}]`);
  }
  toString(): string {
    return this.text;
  }
}

export function at(root: string): FieldPath {
  return new FieldPath(root);
}

/** Collects the diagnostics of one object. */
export class Diagnostics {
  readonly items: Diagnostic[] = [];

  error(path: FieldPath | string, message: string): void {
    this.items.push({ severity: 'error', path: String(path), message });
  }

  warn(path: FieldPath | string, message: string): void {
    this.items.push({ severity: 'warning', path: String(path), message });
  }

  get errors(): Diagnostic[] {
    return this.items.filter((d) => d.severity === 'error');
  }

  get warnings(): Diagnostic[] {
    return this.items.filter((d) => d.severity === 'warning');
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}
