// A syntax-only check of attribute expressions (Mixer's CEXL in rule.match,
// CEL in Telemetry filters): quotes closed, brackets balanced, no dangling
// operator. Type checking against an attribute vocabulary comes with Mixer.

/** The first syntax problem of an expression, or undefined when it looks well formed. */
export function expressionSyntaxProblem(text: string): string | undefined {
  const stack: { ch: string; at: number }[] = [];
  const closing: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  let lastToken = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"' || ch === "'" || ch === '`') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== ch) i += text[i] === '\\' ? 2 : 1;
      if (i >= text.length) return `unterminated string starting at column ${start + 1}`;
      i++;
      lastToken = 'value';
      continue;
    }
    if (ch === '(' || ch === '[' || ch === '{') {
      stack.push({ ch, at: i });
      lastToken = ch;
    } else if (ch in closing) {
      const open = stack.pop();
      if (!open || open.ch !== closing[ch]) return `unbalanced "${ch}" at column ${i + 1}`;
      if (ch === ')' && isBinaryOperator(lastToken)) return `missing operand before ")" at column ${i + 1}`;
      lastToken = 'value';
    } else if (/\s/.test(ch)) {
      // whitespace separates tokens and carries no meaning
    } else {
      const two = text.slice(i, i + 2);
      if (['&&', '||', '==', '!=', '<=', '>='].includes(two)) {
        if (isBinaryOperator(lastToken) || lastToken === '' || lastToken === '(') return `missing operand before "${two}" at column ${i + 1}`;
        lastToken = two;
        i += 2;
        continue;
      }
      if (ch === '|' || ch === '&') {
        if (lastToken === '' || isBinaryOperator(lastToken) || lastToken === '(') return `missing operand before "${ch}" at column ${i + 1}`;
        lastToken = ch;
      } else {
        lastToken = 'value';
      }
    }
    i++;
  }
  if (stack.length > 0) {
    const open = stack[stack.length - 1]!;
    return `unclosed "${open.ch}" at column ${open.at + 1}`;
  }
  if (isBinaryOperator(lastToken)) return `expression ends with operator "${lastToken}"`;
  return undefined;
}

function isBinaryOperator(token: string): boolean {
  return ['&&', '||', '==', '!=', '<=', '>=', '|', '&'].includes(token);
}
