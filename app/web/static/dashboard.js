/* The marketer dashboard: campaigns (list, calendar, results), a new-campaign form with a live
 * segment count, and the customer trends, all from the JSON API with a marketer's or admin's token.
 *
 * Plain JavaScript plus the vendored Chart.js (static/vendor). Everything from the server goes
 * into the page with textContent, never innerHTML. Every API error is application/problem+json;
 * its `detail` is what the marketer sees.
 */
(() => {
  'use strict';

  const API = document.body.dataset.apiRoot || '/api/v1';
  const TOKEN_KEY = 'pointcard.dashboard.token';
  const STAFF = ['marketer', 'admin'];
  const CHANNELS = [ // the fallback order
    { name: 'wallet', label: 'Wallet message', title: true },
    { name: 'push', label: 'Push', title: true },
    { name: 'sms', label: 'SMS', title: false },
    { name: 'voice', label: 'Voicemail', title: false },
  ];
  const NUMERIC = ['gte', 'lte', 'gt', 'lt', 'eq', 'between'];
  const FIELDS = {
    points: { label: 'Points balance', ops: NUMERIC },
    status: { label: 'Status', ops: ['in', 'not_in'], list: true, hint: 'new, active, lapsing, lapsed, won_back' },
    tier: { label: 'Tier', ops: ['in', 'not_in'], list: true, hint: 'tier names' },
    days_since_visit: { label: 'Days since last visit', ops: NUMERIC },
    visits: { label: 'Visits (scoring window)', ops: NUMERIC },
    spend: { label: 'Spend (scoring window)', ops: NUMERIC },
    r_score: { label: 'Recency score (1-5)', ops: NUMERIC },
    f_score: { label: 'Frequency score (1-5)', ops: NUMERIC },
    m_score: { label: 'Money score (1-5)', ops: NUMERIC },
    overdue: { label: 'Overdue factor', ops: NUMERIC },
    p_alive: { label: 'P(still active)', ops: NUMERIC },
    p_return: { label: 'P(visit in 30 days)', ops: NUMERIC },
    tag: { label: 'Tag', ops: ['in', 'not_in', 'all'], list: true, hint: 'tags' },
    consent: { label: 'Consent', ops: ['eq'], consent: true, hint: 'yes or no' },
  };
  const OP_LABELS = { gte: '≥', lte: '≤', gt: '>', lt: '<', eq: '=', ne: '≠', between: 'between', in: 'is one of',
    not_in: 'is none of', all: 'has all of' };
  const STATUS_COLOURS = { active: '#13692e', won_back: '#2f8f9d', new: '#7a6cc8', lapsing: '#d08a00', lapsed: '#a3121f' };

  const $ = (id) => document.getElementById(id);
  const state = { token: null, campaigns: [], month: null, charts: {}, countTimer: null, countSeq: 0 };

  // --- errors, messages, HTTP ------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super(`HTTP ${status}`);
      this.status = status;
      this.problem = problem && typeof problem === 'object' ? problem : {};
    }
  }

  function errorText(err) {
    if (err instanceof ApiError) {
      const p = err.problem;
      let text = (typeof p.detail === 'string' && p.detail) || `The server answered HTTP ${err.status}.`;
      if (Array.isArray(p.errors) && p.errors.length && !p.rule) {
        text += `\n${p.errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('\n')}`;
      }
      return text;
    }
    console.error(err);
    return 'The dashboard could not reach the server. Check the connection and try again.';
  }

  function show(element, text) {
    element.textContent = text;
    element.hidden = !text;
  }

  const showError = (text) => show($('message'), text);
  const showNotice = (text) => show($('notice'), text);

  function fail(err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin(errorText(err));
      return;
    }
    showError(errorText(err));
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json, application/problem+json' };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
      credentials: 'omit',
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—');
  const percent = (x) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);

  // --- log in and out --------------------------------------------------------------------------

  function showLogin(message) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $('app-view').hidden = true;
    $('logout').hidden = true;
    $('login-view').hidden = false;
    $('password').value = '';
    showNotice('');
    showError(message || '');
    $('email').focus();
  }

  async function logIn(event) {
    event.preventDefault();
    showError('');
    try {
      const answer = await api('POST', '/auth/token', { email: $('email').value.trim(), password: $('password').value });
      if (!STAFF.includes(answer.role)) {
        showError('The dashboard is for marketers and admins.');
        return;
      }
      state.token = answer.access_token;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      await showApp();
    } catch (err) {
      fail(err);
    }
  }

  async function showApp() {
    $('login-view').hidden = true;
    $('app-view').hidden = false;
    $('logout').hidden = false;
    showError('');
    switchView('campaigns');
    await refreshCampaigns();
  }

  // --- views -----------------------------------------------------------------------------------

  function switchView(name) {
    for (const tab of document.querySelectorAll('.tab')) {
      if (tab.dataset.view === name) tab.setAttribute('aria-current', 'page');
      else tab.removeAttribute('aria-current');
    }
    for (const view of ['campaigns', 'create', 'customers']) $(`${view}-view`).hidden = view !== name;
    if (name === 'create') updateCount();
    if (name === 'customers') loadTrends().catch(fail);
  }

  // --- campaigns list --------------------------------------------------------------------------

  async function refreshCampaigns() {
    try {
      state.campaigns = await api('GET', '/campaigns?limit=200');
      renderCampaigns();
      await renderCalendar();
    } catch (err) {
      fail(err);
    }
  }

  function actionButton(label, action, campaign) {
    const button = el('button', label, 'secondary small');
    button.type = 'button';
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        showError('');
        if (action === 'results') {
          await showResults(campaign);
        } else {
          const changed = await api('POST', `/campaigns/${campaign.id}/${action}`);
          showNotice(`'${changed.name}' is now ${changed.state}.`);
          await refreshCampaigns();
        }
      } catch (err) {
        fail(err);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }

  function renderCampaigns() {
    const body = $('campaigns').tBodies[0];
    body.replaceChildren();
    $('no-campaigns').hidden = state.campaigns.length > 0;
    for (const campaign of state.campaigns) {
      const row = document.createElement('tr');
      row.dataset.testid = 'campaign-row';
      row.append(el('td', campaign.name), el('td', campaign.kind === 'reengagement' ? 're-engagement' : 'broadcast'),
        el('td', campaign.state, 'state'),
        el('td', campaign.kind === 'reengagement' ? 'per customer' : when(campaign.next_run_at)));
      const actions = el('div', null, 'actions');
      if (campaign.state === 'draft') actions.append(actionButton('Schedule', 'schedule', campaign));
      if (campaign.state === 'scheduled') actions.append(actionButton('Pause', 'pause', campaign));
      if (campaign.state === 'paused') actions.append(actionButton('Resume', 'resume', campaign));
      if (['draft', 'scheduled', 'paused'].includes(campaign.state)) actions.append(actionButton('Cancel', 'cancel', campaign));
      actions.append(actionButton('Results', 'results', campaign));
      const cell = document.createElement('td');
      cell.append(actions);
      row.append(cell);
      body.append(row);
    }
  }

  // --- calendar --------------------------------------------------------------------------------

  function isoDay(date) {
    return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
  }

  async function renderCalendar() {
    const month = state.month || new Date(new Date().getFullYear(), new Date().getMonth(), 1);
    state.month = month;
    const first = new Date(month);
    first.setDate(1 - ((month.getDay() + 6) % 7)); // back to Monday
    $('calendar-title').textContent = month.toLocaleDateString(undefined, { month: 'long', year: 'numeric' });
    const entries = await api('GET', `/campaigns/calendar?start=${isoDay(first)}&days=42`);
    const byDay = {};
    for (const entry of entries) (byDay[isoDay(new Date(entry.at))] ||= []).push(entry);
    const grid = $('calendar');
    grid.replaceChildren(...['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].map((d) => el('div', d, 'weekday')));
    const today = isoDay(new Date());
    for (let i = 0; i < 42; i += 1) {
      const day = new Date(first);
      day.setDate(first.getDate() + i);
      const key = isoDay(day);
      const cell = el('div', null, 'day');
      cell.setAttribute('role', 'gridcell');
      if (day.getMonth() !== month.getMonth()) cell.classList.add('other');
      if (key === today) cell.classList.add('today');
      cell.append(el('span', day.getDate(), 'date'));
      for (const entry of byDay[key] || []) {
        const time = new Date(entry.at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
        const item = el('span', `${time} ${entry.name}`, entry.sent ? 'event sent' : 'event');
        item.title = `${entry.name} (${entry.sent ? 'sent' : entry.state})`;
        cell.append(item);
      }
      grid.append(cell);
    }
  }

  function moveMonth(delta) {
    state.month = new Date(state.month.getFullYear(), state.month.getMonth() + delta, 1);
    renderCalendar().catch(fail);
  }

  // --- results ---------------------------------------------------------------------------------

  function resultRow(label, step) {
    const row = document.createElement('tr');
    const suppressed = Object.entries(step.suppressed).map(([reason, n]) => `${reason}: ${n}`).join(', ') || '0';
    const uplift = step.uplift
      ? `${percent(step.uplift.difference)} (${percent(step.uplift.low)} to ${percent(step.uplift.high)})` : '—';
    for (const value of [label, step.targeted, step.held_out, step.queued, step.sent, step.delivered, step.failed,
      suppressed, step.opted_out, `${step.treatment.returned} (${percent(step.treatment.return_rate)})`,
      `${step.holdout.returned} (${percent(step.holdout.return_rate)})`, uplift]) {
      row.append(el('td', value));
    }
    return row;
  }

  async function showResults(campaign) {
    const results = await api('GET', `/campaigns/${campaign.id}/results`);
    $('results-name').textContent = results.name;
    $('results-note').textContent = `Returned = came back within ${results.return_days} days`
      + (results.window_complete ? '.' : ' (still counting).');
    const body = $('results-table').tBodies[0];
    const rows = results.steps.length > 1 || results.steps.some((s) => s.step !== null)
      ? results.steps.map((s) => resultRow(`Day ${s.day} (step ${s.step + 1})`, s)) : [];
    body.replaceChildren(resultRow('All', results.total), ...rows);
    $('results').hidden = false;
    const labels = ['All', ...results.steps.filter((s) => s.step !== null).map((s) => `Day ${s.day}`)];
    const steps = [results.total, ...results.steps.filter((s) => s.step !== null)];
    drawChart('results', $('results-chart'), {
      type: 'bar',
      data: {
        labels,
        datasets: [
          { label: 'Campaign', data: steps.map((s) => 100 * (s.treatment.return_rate || 0)), backgroundColor: '#0b5cad' },
          { label: 'Holdout', data: steps.map((s) => 100 * (s.holdout.return_rate || 0)), backgroundColor: '#9aa0ab' },
        ],
      },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: 'returned (%)' } } } },
    });
    $('results').scrollIntoView({ block: 'nearest' });
  }

  // --- charts ----------------------------------------------------------------------------------

  function drawChart(key, canvas, config) {
    if (state.charts[key]) state.charts[key].destroy();
    config.options = { responsive: true, maintainAspectRatio: false, animation: false, ...config.options };
    state.charts[key] = new window.Chart(canvas, config);
  }

  async function loadTrends() {
    const trend = await api('GET', '/scores/trend?days=180');
    $('no-scores').hidden = trend.statuses.length > 0;
    const statuses = ['active', 'won_back', 'new', 'lapsing', 'lapsed'];
    drawChart('status', $('status-chart'), {
      type: 'line',
      data: {
        labels: trend.statuses.map((s) => s.as_of),
        datasets: statuses.map((status) => ({
          label: status.replace('_', ' '), data: trend.statuses.map((s) => s.counts[status] || 0),
          borderColor: STATUS_COLOURS[status], backgroundColor: STATUS_COLOURS[status], fill: true, pointRadius: 0,
        })),
      },
      options: { scales: { y: { stacked: true, beginAtZero: true } } },
    });
    drawChart('enrollment', $('enrollment-chart'), {
      type: 'bar',
      data: {
        labels: trend.enrollments.map((d) => d.day),
        datasets: [{ label: 'enrolments', data: trend.enrollments.map((d) => d.customers), backgroundColor: '#0b5cad' }],
      },
      options: { scales: { y: { beginAtZero: true } } },
    });
    const model = trend.model || {};
    $('model-note').textContent = model.bgnbd
      ? `Tonight's BG/NBD fit on ${model.customers} customers: r ${model.bgnbd.r.toFixed(3)}, α ${model.bgnbd.alpha.toFixed(2)}, a ${model.bgnbd.a.toFixed(3)}, b ${model.bgnbd.b.toFixed(3)}.`
      : (model.skipped ? `No P(alive) model tonight: ${model.skipped}.` : '');
  }

  // --- new campaign: the rule builder and the live count ---------------------------------------

  function addRule(field = 'points', op = 'gte', value = '0') {
    const item = $('rule-template').content.firstElementChild.cloneNode(true);
    const fieldSelect = item.querySelector('.rule-field');
    for (const [name, spec] of Object.entries(FIELDS)) fieldSelect.append(new Option(spec.label, name));
    fieldSelect.value = field;
    const setOps = () => {
      const spec = FIELDS[fieldSelect.value];
      const opSelect = item.querySelector('.rule-op');
      opSelect.replaceChildren(...spec.ops.map((name) => new Option(OP_LABELS[name], name)));
      item.querySelector('.rule-channel').hidden = !spec.consent;
      item.querySelector('.rule-value').placeholder = spec.hint || (spec.ops === NUMERIC ? 'a number (between: 1, 5)' : '');
    };
    setOps();
    item.querySelector('.rule-op').value = op;
    item.querySelector('.rule-value').value = value;
    fieldSelect.addEventListener('change', () => { setOps(); updateCount(); });
    item.querySelector('.rule-remove').addEventListener('click', () => { item.remove(); updateCount(); });
    for (const input of item.querySelectorAll('select, input')) input.addEventListener('input', updateCount);
    $('rules').append(item);
  }

  function ruleOf(item) {
    const field = item.querySelector('.rule-field').value;
    const op = item.querySelector('.rule-op').value;
    const raw = item.querySelector('.rule-value').value.trim();
    if (!raw) return null;
    const spec = FIELDS[field];
    if (spec.consent) {
      return { field, op, channel: item.querySelector('.rule-channel').value, value: /^(y|yes|true|1)$/i.test(raw) };
    }
    if (spec.list) return { field, op, value: raw.split(',').map((v) => v.trim()).filter(Boolean) };
    const number = (v) => (v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v.trim());
    return { field, op, value: op === 'between' ? raw.split(',').map(number) : number(raw) };
  }

  function currentRules() {
    const conditions = [...$('rules').children].map(ruleOf).filter(Boolean);
    return { [$('combinator').value]: conditions.length ? conditions : [{ field: 'points', op: 'gte', value: -1e12 }] };
  }

  function updateCount() {
    clearTimeout(state.countTimer);
    state.countTimer = setTimeout(async () => {
      const seq = ++state.countSeq;
      try {
        const preview = await api('POST', '/segments/preview', { rules: currentRules() });
        if (seq !== state.countSeq) return; // a newer count is on its way
        $('segment-count').textContent = `${preview.count} customer${preview.count === 1 ? '' : 's'}`;
        $('segment-count-note').textContent = preview.scored_as_of ? `(scores of ${preview.scored_as_of})` : '(no nightly scores yet)';
      } catch (err) {
        if (seq !== state.countSeq) return;
        if (err instanceof ApiError && err.status === 401) { fail(err); return; }
        $('segment-count').textContent = '—';
        $('segment-count-note').textContent = errorText(err);
      }
    }, 250);
  }

  function buildChannels() {
    const box = $('channels');
    for (const channel of CHANNELS) {
      const wrap = el('div', null, 'channel');
      const label = el('label', null, 'inline');
      const check = document.createElement('input');
      check.type = 'checkbox';
      check.id = `channel-${channel.name}`;
      check.value = channel.name;
      check.checked = channel.name === 'push';
      label.append(check, document.createTextNode(` ${channel.label}`));
      const fields = el('div', null, 'channel-fields');
      if (channel.title) {
        const title = document.createElement('input');
        title.id = `title-${channel.name}`;
        title.placeholder = 'Title';
        title.setAttribute('aria-label', `${channel.label} title`);
        fields.append(title);
      }
      const body = document.createElement('textarea');
      body.id = `body-${channel.name}`;
      body.setAttribute('aria-label', `${channel.label} text`);
      body.value = 'Hi {{ first_name }}, we have something for you at {{ program }}.';
      fields.append(body);
      fields.hidden = !check.checked;
      check.addEventListener('change', () => { fields.hidden = !check.checked; });
      wrap.append(label, fields);
      box.append(wrap);
    }
  }

  function campaignBody() {
    const channels = CHANNELS.map((c) => c.name).filter((name) => $(`channel-${name}`).checked);
    const templates = {};
    for (const name of channels) {
      const title = $(`title-${name}`);
      templates[name] = { body: $(`body-${name}`).value, ...(title && title.value.trim() ? { title: title.value.trim() } : {}) };
    }
    const body = {
      name: $('campaign-name').value.trim(), rules: currentRules(), channels, templates,
      holdout_percent: Number($('holdout').value || 0), bonus_points: Number($('bonus').value || 0),
    };
    if (document.querySelector('input[name=schedule]:checked').value === 'cron') {
      body.cron = $('cron').value.trim();
    } else {
      const local = $('send-at').value;
      if (!local) throw new Error('Choose when to send.');
      body.send_at = new Date(local).toISOString();
    }
    return body;
  }

  async function createCampaign(event) {
    event.preventDefault();
    showError('');
    showNotice('');
    const button = $('create-campaign');
    button.disabled = true;
    try {
      let body;
      try {
        body = campaignBody();
      } catch (err) {
        showError(err.message);
        return;
      }
      const campaign = await api('POST', '/campaigns', body);
      const scheduled = await api('POST', `/campaigns/${campaign.id}/schedule`);
      showNotice(`'${scheduled.name}' is scheduled for ${when(scheduled.next_run_at)}.`);
      $('campaign-form').reset();
      switchView('campaigns');
      await refreshCampaigns();
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  }

  // --- start -----------------------------------------------------------------------------------

  function start() {
    $('login-form').addEventListener('submit', logIn);
    $('logout').addEventListener('click', () => showLogin(''));
    for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => switchView(tab.dataset.view));
    $('calendar-prev').addEventListener('click', () => moveMonth(-1));
    $('calendar-next').addEventListener('click', () => moveMonth(1));
    $('add-rule').addEventListener('click', () => { addRule('points', 'gte', ''); });
    $('combinator').addEventListener('change', updateCount);
    $('campaign-form').addEventListener('submit', createCampaign);
    buildChannels();
    addRule();
    state.token = sessionStorage.getItem(TOKEN_KEY);
    if (state.token) showApp().catch(fail);
    else showLogin('');
  }

  start();
})();
