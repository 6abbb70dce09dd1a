export const HELLO = 1;
