import { EXIT_OK, main } from './program.ts';

const code = await main(process.argv);
if (code !== EXIT_OK) process.exitCode = code;
