// Bookinfo details: the book's metadata.
//
//   GET /details/<id>   {id, author, year, type, pages, publisher, language, ISBN-10, ISBN-13}
//   GET /health         {status: "Details is healthy"}
//
// Env: PORT (9080), HOST (0.0.0.0), SERVICE_VERSION (v1), POD_NAME / HOSTNAME.

import { identity, run, sendJson, serve } from './common.ts';

const id = identity('details');

function bookDetails(productId: number): Record<string, unknown> {
  return {
    id: productId,
    author: 'William Shakespeare',
    year: 1595,
    type: 'paperback',
    pages: 200,
    publisher: 'PublisherA',
    language: 'English',
    'ISBN-10': '1234567890',
    'ISBN-13': '123-1234567890',
  };
}

run(() =>
  serve(id, (req, res, url) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
    if (url.pathname === '/health') return sendJson(res, 200, { status: 'Details is healthy' });
    const m = /^\/details\/([^/]*)$/.exec(url.pathname);
    if (m) {
      if (!/^-?\d+$/.test(m[1])) return sendJson(res, 400, { error: 'please provide numeric product id' });
      return sendJson(res, 200, bookDetails(Number(m[1])));
    }
    sendJson(res, 404, { error: 'not found' });
  }),
);
