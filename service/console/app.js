// promo-webhooks console: the Webhooks page of Promo over the admin API.
//
// Plain JavaScript, no build step, nothing loaded from elsewhere. It talks
// only to this origin's /v1 API with the admin token the person typed in,
// kept in this tab's sessionStorage (never in a URL, never in a cookie).
// Every value that comes from the API is put into the page as text
// (textContent, option.text, input.value), never as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'promo-webhooks.token';
  const COMPANY_KEY = 'promo-webhooks.company';

  const state = {
    company: '',
    eventTypes: [],      // [{name, description, requiresNotificationPeriod}]
    settings: null,      // {webhookDisabledNotificationEmail, webhookPayloadDataType}
    webhooks: [],
    editing: null,       // the webhook being edited, or null when adding
    attemptsFor: null,   // the webhook whose attempts are shown
  };

  const $ = (id) => document.getElementById(id);

  // ---- the API ---------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const e = body && body.error ? body.error : {};
      super(e.message || ('HTTP ' + status));
      this.status = status;
      this.code = e.code || '';
      this.field = e.field || '';
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  function companyPath(rest) {
    return '/v1/companies/' + encodeURIComponent(state.company) + rest;
  }

  // Calls the API; resolves to {status, type, text, json}. Rejects with an
  // ApiError for any status but 2xx.
  async function api(method, path, body) {
    const headers = { 'Authorization': 'Bearer ' + token() };
    const init = { method: method, headers: headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, { error: { message: 'the service cannot be reached' } });
    }
    const text = await res.text();
    const type = res.headers.get('Content-Type') || '';
    let json = null;
    if (type.indexOf('application/json') === 0 && text !== '') {
      try { json = JSON.parse(text); } catch (e) { json = null; }
    }
    if (res.status === 401) {
      signOut('The token was refused. Sign in again.');
      throw new ApiError(401, json);
    }
    if (res.status < 200 || res.status > 299) {
      throw new ApiError(res.status, json);
    }
    return { status: res.status, type: type, text: text, json: json };
  }

  // ---- small DOM helpers (text only) -------------------------------------

  function show(el, on) {
    el.hidden = !on;
  }

  function setText(el, s) {
    el.textContent = s === null || s === undefined ? '' : String(s);
  }

  function cell(tr, cls, s) {
    const td = document.createElement('td');
    td.className = cls;
    setText(td, s);
    tr.appendChild(td);
    return td;
  }

  // "2026-12-03T10:35:17.885Z" -> "2026-12-03 10:35:17 UTC" (the API's
  // times are UTC RFC 3339); anything else is shown as it came.
  function when(s) {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?Z$/.exec(s || '');
    return m ? m[1] + ' ' + m[2] + ' UTC' : (s || '');
  }

  function button(label, cls, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    setText(b, label);
    b.addEventListener('click', onClick);
    return b;
  }

  function notice(msg) {
    const n = $('notice');
    setText(n, msg);
    show(n, !!msg);
  }

  function clearErrors(form) {
    form.querySelectorAll('.field-error').forEach((p) => {
      setText(p, '');
      show(p, false);
    });
  }

  // Shows an API error next to the field it names, or at fallbackId.
  function showError(err, fallbackId) {
    let el = err.field ? $('err-' + err.field) : null;
    if (!el) el = $(fallbackId);
    setText(el, err.message);
    show(el, true);
  }

  // ---- sign in / out -----------------------------------------------------

  function signOut(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    show($('main'), false);
    show($('login'), true);
    show($('sign-out'), false);
    show($('company-current'), false);
    $('token').value = '';
    $('company').value = sessionStorage.getItem(COMPANY_KEY) || '';
    const e = $('err-login');
    setText(e, msg || '');
    show(e, !!msg);
  }

  async function openCompany(company) {
    state.company = company;
    sessionStorage.setItem(COMPANY_KEY, company);
    setText($('company-current'), 'Company: ' + company);
    $('company-switch').value = company;
    show($('company-current'), true);
    show($('editor'), false);
    show($('sample'), false);
    show($('attempts'), false);
    notice('');
    if (state.eventTypes.length === 0) {
      const r = await api('GET', '/v1/event-types');
      state.eventTypes = r.json.items;
      fillEventSelect();
    }
    await Promise.all([loadSettings(), loadWebhooks()]);
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const t = $('token').value.trim();
    const c = $('company').value.trim();
    const e = $('err-login');
    show(e, false);
    if (!t || !c) {
      setText(e, 'Type the admin token and a company.');
      show(e, true);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    try {
      await enter(c);
    } catch (err) {
      if (err.status !== 401) {
        setText(e, err.message);
        show(e, true);
      }
    }
  }

  async function enter(company) {
    show($('login'), false);
    show($('main'), true);
    show($('sign-out'), true);
    await openCompany(company);
  }

  // ---- event types -------------------------------------------------------

  function eventType(name) {
    return state.eventTypes.find((t) => t.name === name) || null;
  }

  function fillEventSelect() {
    const sel = $('f-event');
    sel.textContent = '';
    state.eventTypes.forEach((t) => {
      const o = document.createElement('option');
      o.value = t.name;
      o.text = t.name;
      sel.appendChild(o);
    });
    onEventChange();
  }

  // The notification period and its value only for the events needing them.
  function onEventChange() {
    const t = eventType($('f-event').value);
    setText($('f-event-desc'), t ? t.description : '');
    show($('f-period-row'), !!(t && t.requiresNotificationPeriod));
  }

  // ---- webhooks list -------------------------------------------------------

  async function loadWebhooks() {
    const r = await api('GET', companyPath('/webhooks'));
    state.webhooks = r.json.items;
    renderWebhooks();
  }

  function renderWebhooks() {
    const tbody = $('webhooks').querySelector('tbody');
    tbody.textContent = '';
    show($('list-empty'), state.webhooks.length === 0);
    show($('webhooks'), state.webhooks.length > 0);
    state.webhooks.forEach((w) => {
      const tr = document.createElement('tr');
      tr.dataset.id = w.id;
      if (!w.enabled) tr.className = 'is-disabled';
      cell(tr, 'c-event', w.event);
      cell(tr, 'c-target', w.target);
      cell(tr, 'c-enabled', w.enabled ? 'Yes' : 'No');
      cell(tr, 'c-period', w.notificationPeriod || '');
      cell(tr, 'c-value', w.notificationPeriodValue === null ? '' : w.notificationPeriodValue);
      const times = cell(tr, 'c-times', '');
      [['c-created', 'created ', w.createdAt], ['c-updated', 'updated ', w.updatedAt]].forEach((x) => {
        const div = document.createElement('div');
        const label = document.createElement('span');
        label.className = 'label';
        setText(label, x[1]);
        const t = document.createElement('span');
        t.className = x[0];
        setText(t, when(x[2]));
        div.appendChild(label);
        div.appendChild(t);
        times.appendChild(div);
      });
      const d = cell(tr, 'c-disabled', '');
      if (w.disabledAt) {
        const at = document.createElement('div');
        setText(at, when(w.disabledAt));
        const why = document.createElement('div');
        why.className = 'reason';
        setText(why, w.disabledReason || '');
        d.appendChild(at);
        d.appendChild(why);
      }
      const act = cell(tr, 'c-actions', '');
      act.appendChild(button('Edit', 'b-edit secondary', () => openEditor(w)));
      act.appendChild(button('View Sample Payload', 'b-sample secondary', () => webhookSample(w)));
      act.appendChild(button('Attempts', 'b-attempts secondary', () => openAttempts(w)));
      act.appendChild(button('Send test', 'b-test secondary', () => openAttempts(w).then(() => sendTest())));
      if (!w.enabled) {
        act.appendChild(button('Enable again', 'b-enable', () => enableAgain(w)));
      }
      act.appendChild(button('Delete', 'b-delete danger', () => removeWebhook(w)));
      tbody.appendChild(tr);
    });
  }

  async function refreshAll() {
    notice('');
    try {
      await loadWebhooks();
      if (state.attemptsFor) {
        const w = state.webhooks.find((x) => x.id === state.attemptsFor.id);
        if (w) await openAttempts(w);
        else show($('attempts'), false);
      }
    } catch (err) {
      notice(err.message);
    }
  }

  async function removeWebhook(w) {
    if (!window.confirm('Delete the ' + w.event + ' webhook to ' + w.target + '?')) return;
    try {
      await api('DELETE', companyPath('/webhooks/' + encodeURIComponent(w.id)));
      if (state.attemptsFor && state.attemptsFor.id === w.id) show($('attempts'), false);
      if (state.editing && state.editing.id === w.id) show($('editor'), false);
      await loadWebhooks();
    } catch (err) {
      notice(err.message);
    }
  }

  async function enableAgain(w) {
    try {
      await api('PATCH', companyPath('/webhooks/' + encodeURIComponent(w.id)), { enabled: true });
      await refreshAll();
    } catch (err) {
      notice(err.message);
    }
  }

  // ---- add / edit ----------------------------------------------------------

  function openEditor(w) {
    const form = $('webhook-form');
    clearErrors(form);
    state.editing = w || null;
    setText($('editor-title'), w ? 'Edit webhook' : 'Add webhook');
    $('f-event').value = w ? w.event : state.eventTypes[0].name;
    $('f-target').value = w ? w.target : '';
    $('f-enabled').checked = w ? w.enabled : true;
    $('f-period').value = w && w.notificationPeriod ? w.notificationPeriod : '';
    $('f-period-value').value = w && w.notificationPeriodValue !== null ? String(w.notificationPeriodValue) : '';
    $('f-payload').value = w && w.payloadDataType ? w.payloadDataType : '';
    $('f-secret').value = '';
    $('f-secret-remove').checked = false;
    show($('f-secret-remove-row'), !!(w && w.hasSecret));
    setText($('f-secret-hint'), w && w.hasSecret ?
      'A secret is stored; leave this empty to keep it.' :
      'With a secret (whsec_ + base64), every delivery carries webhook-signature.');
    onEventChange();
    show($('editor'), true);
    $('f-target').focus();
  }

  // The request body: what the form says, in the API's terms. A period
  // value that is not a whole number is sent as typed, so the API's own
  // message names it.
  function formBody() {
    const t = eventType($('f-event').value);
    const body = {
      event: $('f-event').value,
      target: $('f-target').value.trim(),
      enabled: $('f-enabled').checked,
    };
    if (t && t.requiresNotificationPeriod) {
      const p = $('f-period').value;
      const v = $('f-period-value').value.trim();
      body.notificationPeriod = p === '' ? null : p;
      body.notificationPeriodValue = v === '' ? null : (/^[0-9]+$/.test(v) ? Number(v) : v);
    }
    const pt = $('f-payload').value;
    body.payloadDataType = pt === '' ? null : pt;
    const s = $('f-secret').value;
    if (s !== '') body.secret = s;
    else if ($('f-secret-remove').checked) body.secret = null;
    return body;
  }

  async function onSave(ev) {
    ev.preventDefault();
    const form = $('webhook-form');
    clearErrors(form);
    const body = formBody();
    try {
      if (state.editing) {
        await api('PUT', companyPath('/webhooks/' + encodeURIComponent(state.editing.id)), body);
      } else {
        await api('POST', companyPath('/webhooks'), body);
      }
      show($('editor'), false);
      state.editing = null;
      await refreshAll();
    } catch (err) {
      if (err.status !== 401) showError(err, 'err-form');
    }
  }

  // ---- sample payloads -------------------------------------------------------

  function prettyJson(text) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (e) {
      return text;
    }
  }

  function escapeXml(s) {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }

  // Indents XML (the payloads are elements and text only) into a string
  // that is shown as text.
  function prettyXml(text) {
    const doc = new DOMParser().parseFromString(text, 'application/xml');
    if (doc.getElementsByTagName('parsererror').length > 0) return text;
    const out = [];
    if (text.indexOf('<?xml') === 0) out.push(text.slice(0, text.indexOf('?>') + 2));
    const walk = (el, depth) => {
      const pad = '  '.repeat(depth);
      const kids = Array.from(el.childNodes).filter((n) => n.nodeType === 1);
      const name = el.nodeName;
      if (kids.length === 0) {
        const t = el.textContent;
        out.push(t === '' ? pad + '<' + name + '/>' :
          pad + '<' + name + '>' + escapeXml(t) + '</' + name + '>');
        return;
      }
      out.push(pad + '<' + name + '>');
      kids.forEach((k) => walk(k, depth + 1));
      out.push(pad + '</' + name + '>');
    };
    walk(doc.documentElement, 0);
    return out.join('\n');
  }

  function showSample(title, r) {
    const xml = r.type.indexOf('application/xml') === 0;
    setText($('sample-title'), title);
    setText($('sample-format'), xml ? 'XML' : 'JSON');
    setText($('sample-body'), xml ? prettyXml(r.text) : prettyJson(r.text));
    show($('sample'), true);
    $('sample').scrollIntoView({ block: 'nearest' });
  }

  // The sample of the event chosen in the form, in the payload data type
  // the form (or else the company) gives.
  async function formSample() {
    const name = $('f-event').value;
    const pt = $('f-payload').value || (state.settings ? state.settings.webhookPayloadDataType : 'Json');
    try {
      const r = await api('GET', '/v1/event-types/' + encodeURIComponent(name) +
        '/sample-payload?format=' + (pt === 'Xml' ? 'xml' : 'json'));
      showSample('Sample payload: ' + name, r);
    } catch (err) {
      notice(err.message);
    }
  }

  async function webhookSample(w) {
    try {
      const r = await api('GET', companyPath('/webhooks/' + encodeURIComponent(w.id) + '/sample-payload'));
      showSample('Sample payload: ' + w.event + ' \u2192 ' + w.target, r);
    } catch (err) {
      notice(err.message);
    }
  }

  // ---- attempts, enable again, test send ---------------------------------------

  async function openAttempts(w) {
    // A test result belongs to the webhook it was sent for.
    if (!state.attemptsFor || state.attemptsFor.id !== w.id) show($('test-result'), false);
    state.attemptsFor = w;
    setText($('attempts-title'), 'Attempts: ' + w.event + ' \u2192 ' + w.target);
    show($('attempts-enable'), !w.enabled);
    const dis = $('attempts-disabled');
    setText(dis, w.enabled ? '' : 'Disabled since ' + when(w.disabledAt) + ': ' + (w.disabledReason || ''));
    show(dis, !w.enabled);
    show($('attempts'), true);
    try {
      const r = await api('GET', companyPath('/webhooks/' + encodeURIComponent(w.id) + '/attempts'));
      renderAttempts(r.json.items);
    } catch (err) {
      notice(err.message);
    }
  }

  function renderAttempts(items) {
    const tbody = $('attempts-table').querySelector('tbody');
    tbody.textContent = '';
    show($('attempts-empty'), items.length === 0);
    show($('attempts-table'), items.length > 0);
    items.forEach((a) => {
      const tr = document.createElement('tr');
      tr.className = a.error === null ? 'a-ok' : 'a-failed';
      if (a.test) tr.classList.add('is-test');
      cell(tr, 'a-at', when(a.at));
      cell(tr, 'a-event', a.test ? 'test' : a.eventId);
      cell(tr, 'a-attempt', a.attempt);
      cell(tr, 'a-status', a.status === null ? '\u2014' : a.status);
      cell(tr, 'a-duration', a.durationMs + ' ms');
      cell(tr, 'a-error', a.error || '');
      cell(tr, 'a-response', a.responseBody ? a.responseBody.slice(0, 200) : '');
      tbody.appendChild(tr);
    });
  }

  async function sendTest() {
    const w = state.attemptsFor;
    if (!w) return;
    const b = $('attempts-test');
    b.disabled = true;
    setText($('test-outcome'), 'Sending\u2026');
    setText($('test-response'), '');
    show($('test-response'), false);
    $('test-result').className = 'test-result';
    show($('test-result'), true);
    try {
      const r = await api('POST', companyPath('/webhooks/' + encodeURIComponent(w.id) + '/test'));
      const o = r.json;
      const ok = o.error === null;
      $('test-result').className = 'test-result ' + (ok ? 'ok' : 'failed');
      let text = ok ? 'Delivered: HTTP ' + o.status : 'Failed: ' + o.error;
      if (!ok && o.status !== null && o.error !== 'HTTP ' + o.status) text += ' (HTTP ' + o.status + ')';
      setText($('test-outcome'), text + ' (' + o.durationMs + ' ms)');
      setText($('test-response'), o.responseBody || '');
      show($('test-response'), !!o.responseBody);
      await openAttempts(w);
    } catch (err) {
      setText($('test-outcome'), 'Failed: ' + err.message);
    } finally {
      b.disabled = false;
    }
  }

  // ---- settings -----------------------------------------------------------------

  async function loadSettings() {
    const r = await api('GET', companyPath('/settings'));
    state.settings = r.json;
    $('s-type').value = r.json.webhookPayloadDataType;
    $('s-email').value = r.json.webhookDisabledNotificationEmail || '';
    clearErrors($('settings-form'));
    show($('s-saved'), false);
  }

  async function onSettingsSave(ev) {
    ev.preventDefault();
    const form = $('settings-form');
    clearErrors(form);
    show($('s-saved'), false);
    const email = $('s-email').value.trim();
    const body = {
      webhookPayloadDataType: $('s-type').value,
      webhookDisabledNotificationEmail: email === '' ? null : email,
    };
    try {
      const r = await api('PUT', companyPath('/settings'), body);
      state.settings = r.json;
      show($('s-saved'), true);
    } catch (err) {
      if (err.status !== 401) showError(err, 'err-settings');
    }
  }

  // ---- wiring ---------------------------------------------------------------------

  function guard(fn) {
    return (ev) => {
      Promise.resolve(fn(ev)).catch((err) => {
        if (err.status !== 401) notice(err.message);
      });
    };
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', guard(onLogin));
    $('sign-out').addEventListener('click', () => signOut(''));
    $('company-form').addEventListener('submit', guard((ev) => {
      ev.preventDefault();
      const c = $('company-switch').value.trim();
      if (c) return openCompany(c);
      return null;
    }));
    $('refresh').addEventListener('click', guard(refreshAll));
    $('add-webhook').addEventListener('click', () => openEditor(null));
    $('f-event').addEventListener('change', onEventChange);
    $('f-sample').addEventListener('click', guard(formSample));
    $('webhook-form').addEventListener('submit', guard(onSave));
    $('f-cancel').addEventListener('click', () => {
      show($('editor'), false);
      state.editing = null;
    });
    $('sample-close').addEventListener('click', () => show($('sample'), false));
    $('attempts-close').addEventListener('click', () => {
      show($('attempts'), false);
      state.attemptsFor = null;
    });
    $('attempts-refresh').addEventListener('click', guard(refreshAll));
    $('attempts-test').addEventListener('click', guard(sendTest));
    $('attempts-enable').addEventListener('click', guard(() => enableAgain(state.attemptsFor)));
    $('settings-form').addEventListener('submit', guard(onSettingsSave));

    const c = sessionStorage.getItem(COMPANY_KEY) || '';
    if (token() && c) {
      guard(() => enter(c))();
    } else {
      signOut('');
    }
  });
}());
