export async function main(argv: string[]): Promise<number> {
  console.log('hello', argv, process.version);
  return 0;
}
