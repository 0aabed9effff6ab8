// Service worker of the courier page (GET /courier-sw.js, registered by /courier with
// scope "/"). It keeps the page itself working with no connection after the first visit;
// the run's data is not its business.
//
// - install: precache the shell (/courier, /courier-sw.js, /courier.webmanifest) in a
//   cache named after CACHE_VERSION, and take over at once (skipWaiting): the page is one
//   self-contained file, so a new worker never breaks a page already open.
// - activate: delete every older "lifeline-courier-*" cache, then clients.claim() so the
//   page that registered us is controlled without a reload.
// - fetch: only GETs of the three shell paths (a navigation to /courier?run=... included)
//   are answered, NETWORK FIRST: the network's answer is served and replaces the cached
//   copy, so a new page reaches couriers as soon as they are online. When the network
//   fails, or has not answered within NETWORK_TIMEOUT_MS on a bad connection, the cached
//   copy is served instead (the query string is ignored: every run uses the same page);
//   a late network answer still refreshes the cache for next time.
// - Everything else, /v1/ API calls above all, is not touched and never cached here: the
//   page keeps the manifest and its acknowledgements in localStorage itself, and a
//   cached API answer would show a courier stale stages or fake a confirmed drop.
//
// Bump CACHE_VERSION whenever the shell's list or this file's caching changes.

'use strict';

var CACHE_VERSION = 'v1';
var CACHE_PREFIX = 'lifeline-courier-';
var CACHE_NAME = CACHE_PREFIX + CACHE_VERSION;
var NETWORK_TIMEOUT_MS = 4000;

// Resolved against the registration's scope, so the page also works under a path prefix.
var SHELL = ['courier', 'courier-sw.js', 'courier.webmanifest'].map(function (path) {
  return new URL(path, self.registration.scope).href;
});
var MATCH = { ignoreSearch: true, ignoreVary: true };

self.addEventListener('install', function (event) {
  event.waitUntil(
    caches.open(CACHE_NAME).then(function (cache) {
      return cache.addAll(SHELL.map(function (url) { return new Request(url, { cache: 'reload' }); }));
    }).then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener('activate', function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) {
        return name.indexOf(CACHE_PREFIX) === 0 && name !== CACHE_NAME;
      }).map(function (name) { return caches.delete(name); }));
    }).then(function () { return self.clients.claim(); })
  );
});

// The shell entry a request stands for, or null when the request is none of our business.
function shellKey(request) {
  if (request.method !== 'GET') return null;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return null;
  var bare = url.origin + url.pathname;
  return SHELL.indexOf(bare) >= 0 ? bare : null;
}

self.addEventListener('fetch', function (event) {
  var key = shellKey(event.request);
  if (!key) return;   // the browser fetches it as if there were no service worker

  var network = fetch(event.request).then(function (response) {
    // Keep only a plain, complete answer (a redirected response cannot answer a navigation).
    if (response.ok && response.type === 'basic' && !response.redirected) {
      var copy = response.clone();
      event.waitUntil(caches.open(CACHE_NAME).then(function (cache) { return cache.put(key, copy); }));
    }
    return response;
  });
  event.waitUntil(network.catch(function () {}));

  event.respondWith(new Promise(function (resolve, reject) {
    var settled = false;
    function fromCache(networkError) {
      caches.match(key, MATCH).then(function (cached) {
        if (settled) return;
        if (cached) { settled = true; resolve(cached); }
        else if (networkError) { settled = true; reject(networkError); }
      });
    }
    var timer = setTimeout(function () { fromCache(null); }, NETWORK_TIMEOUT_MS);
    network.then(function (response) {
      clearTimeout(timer);
      // A server error is no better than the copy we have; with no copy, pass it on.
      if (!response.ok) {
        caches.match(key, MATCH).then(function (cached) {
          if (!settled) { settled = true; resolve(cached || response); }
        });
        return;
      }
      if (!settled) { settled = true; resolve(response); }
    }, function (err) {
      clearTimeout(timer);
      fromCache(err);
    });
  }));
});
