// The code's existing shape: long lines, single quotes, trailing commas.
export default { printWidth: 200, singleQuote: true, trailingComma: 'all', semi: true, arrowParens: 'always' };
