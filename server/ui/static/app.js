// headwater UI scripts: relative times, buttons and live updates. Every read and write posts one
// of the GraphQL documents the page embeds (#hw-documents) to /graphql, as any client would; the
// browser's session cookie carries the API key when the server has keys.
(function () {
  "use strict";

  var documentsNode = document.getElementById("hw-documents");
  var DOCS = documentsNode ? JSON.parse(documentsNode.textContent) : {};
  var EPOCH = "1970-01-01T00:00:00+00:00";
  var FINAL = ["Success", "Failed", "Cancelled", "TimedOut", "TriggerFailed", "ValidationFailed", "Skipped",
               "Cached", "Looped", "Finished", "ClientFailed"];
  var KNOWN = FINAL.concat(["Scheduled", "Submitted", "Queued", "Pending", "Running", "Cancelling",
                            "Retrying", "Mapped", "Resume", "Paused"]);

  // ---- the API -------------------------------------------------------------------------------

  function gql(name, variables) {
    return fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ query: DOCS[name], variables: variables || {} }),
    }).then(function (response) {
      return response.json().catch(function () {
        throw new Error("The server answered HTTP " + response.status + " without a GraphQL body.");
      }).then(function (body) {
        if (body.errors && body.errors.length) {
          throw new Error(body.errors.map(function (e) { return e.message; }).join(" "));
        }
        if (!response.ok) throw new Error("The server answered HTTP " + response.status + ".");
        return body.data;
      });
    }, function () {
      throw new Error("The server cannot be reached; is headwater running?");
    });
  }

  function showError(message) {
    var box = document.getElementById("errors");
    if (!box) { alert(message); return; }
    box.textContent = message;
    box.scrollIntoView({ block: "nearest" });
  }

  function clearError() {
    var box = document.getElementById("errors");
    if (box) box.textContent = "";
  }

  // ---- times ---------------------------------------------------------------------------------

  function relative(iso) {
    var seconds = (Date.now() - new Date(iso).getTime()) / 1000;
    var future = seconds < 0;
    seconds = Math.abs(seconds);
    var text;
    if (seconds < 5) return "just now";
    if (seconds < 60) text = Math.floor(seconds) + " s";
    else if (seconds < 3600) text = Math.floor(seconds / 60) + " min";
    else if (seconds < 86400) text = Math.floor(seconds / 3600) + " h";
    else text = Math.floor(seconds / 86400) + " d";
    return future ? "in " + text : text + " ago";
  }

  function exact(iso) {
    return new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-relative]").forEach(function (node) {
      node.textContent = relative(node.getAttribute("datetime"));
    });
  }

  function timeNode(iso) {
    if (!iso) return document.createTextNode("—");
    var node = document.createElement("time");
    node.setAttribute("datetime", iso);
    node.setAttribute("data-relative", "");
    node.title = exact(iso);
    node.textContent = relative(iso);
    return node;
  }

  function duration(start, end) {
    if (!start) return "—";
    var seconds = Math.floor(((end ? new Date(end) : new Date()) - new Date(start)) / 1000);
    if (seconds < 60) return seconds + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m " + (seconds % 60) + "s";
    return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m";
  }

  function stateBadge(name) {
    var node = document.createElement("span");
    node.className = "state " + (KNOWN.indexOf(name) >= 0 ? "state-" + name : "state-other");
    node.setAttribute("data-state", name || "");
    node.textContent = name || "—";
    return node;
  }

  function element(tag, children, attributes) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function link(href, text) {
    return element("a", [text], { href: href });
  }

  // ---- forms and buttons ---------------------------------------------------------------------

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  function busy(button, promise) {
    button.disabled = true;
    clearError();
    return promise.then(function (value) { button.disabled = false; return value; },
                        function (error) { button.disabled = false; throw error; });
  }

  var createProject = document.getElementById("create-project");
  if (createProject) {
    createProject.addEventListener("submit", function (event) {
      event.preventDefault();
      var form = event.target;
      var input = { tenant_id: form.dataset.tenant, name: form.elements.name.value.trim() };
      if (form.elements.description.value.trim()) input.description = form.elements.description.value.trim();
      busy(form.querySelector("button"), gql("CREATE_PROJECT", { input: input })).then(function (data) {
        location.href = "/" + form.dataset.slug + "?project=" + data.create_project.id;
      }).catch(function (error) { showError("The project was not created: " + error.message); });
    });
  }

  function startRun(button, input, slug) {
    return busy(button, gql("QUICK_RUN", { input: input })).then(function (data) {
      location.href = "/" + slug + "/flow-run/" + data.create_flow_run.id;
    });
  }

  var quickRun = document.getElementById("quick-run");
  if (quickRun) {
    quickRun.addEventListener("click", function () {
      startRun(quickRun, { flow_id: quickRun.dataset.flow }, quickRun.dataset.slug).catch(function (error) {
        showError("Quick Run failed: " + error.message);
        if (/parameter/i.test(error.message)) {
          var details = document.getElementById("run-with-details");
          if (details) { details.open = true; details.querySelector("input, button").focus(); }
        }
      });
    });
  }

  // A deployment's Quick Run: its flow, parameters, tags and labels, all applied by the server.
  document.querySelectorAll("button.deployment-run").forEach(function (button) {
    button.addEventListener("click", function () {
      startRun(button, { deployment_id: button.dataset.deployment }, button.dataset.slug).catch(function (error) {
        showError("Quick Run failed: " + error.message);
      });
    });
  });

  var runWith = document.getElementById("run-with");
  if (runWith) {
    runWith.addEventListener("submit", function (event) {
      event.preventDefault();
      var parameters = {};
      runWith.querySelectorAll("[data-parameter]").forEach(function (input) {
        var raw = input.value.trim();
        if (raw === "") return;  // the flow's default applies
        try { parameters[input.dataset.parameter] = JSON.parse(raw); }
        catch (e) { parameters[input.dataset.parameter] = raw; }  // plain text is a string
      });
      var input = { flow_id: runWith.dataset.flow, parameters: parameters };
      var labels = runWith.elements.labels.value.trim();
      if (labels) input.labels = labels.split(",").map(function (l) { return l.trim(); }).filter(Boolean);
      var name = runWith.elements.name.value.trim();
      if (name) input.flow_run_name = name;
      startRun(runWith.querySelector("button[type=submit]"), input, runWith.dataset.slug).catch(function (error) {
        showError("The run was not created: " + error.message);
      });
    });
  }

  document.querySelectorAll("button.toggle").forEach(function (button) {
    button.addEventListener("click", function () {
      var on = button.getAttribute("aria-checked") === "true";
      var name = on ? button.dataset.disable : button.dataset.enable;
      // A flow's toggles take its active version (data-flow); a deployment's, its id (data-input, data-id).
      var input = {};
      input[button.dataset.input || "flow_id"] = button.dataset.id || button.dataset.flow;
      busy(button, gql(name, { input: input })).then(function (data) {
        var payload = data[Object.keys(data)[0]];
        if (payload && payload.success === false) throw new Error(payload.error || "the server refused it.");
        button.setAttribute("aria-checked", on ? "false" : "true");
        if (button.id === "toggle-schedule" || button.dataset.reload) location.reload();  // its next runs changed
      }).catch(function (error) { showError("The setting was not changed: " + error.message); });
    });
  });

  // ---- the flow-run page: live state, task runs and logs -------------------------------------

  var run = document.getElementById("flow-run");
  if (run) liveFlowRun(run);

  function liveFlowRun(root) {
    var id = root.dataset.id;
    var slug = root.dataset.slug;
    var seen = {};
    var newest = root.dataset.lastLog || EPOCH;
    var pollsAfterFinal = root.dataset.final === "true" ? 1 : 5;  // late log batches still arrive
    var logs = document.getElementById("logs");
    var latest = null;
    var timer = null;

    function applyFilter(node) {
      var levels = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
      var minimum = levels.indexOf(document.getElementById("log-level").value);
      var text = document.getElementById("log-search").value.toLowerCase();
      var level = levels.indexOf(node.dataset.level);
      node.hidden = (minimum > 0 && level < minimum) || (text !== "" && node.textContent.toLowerCase().indexOf(text) < 0);
    }

    function filterAll() { logs.querySelectorAll("li").forEach(applyFilter); }
    document.getElementById("log-level").addEventListener("change", filterAll);
    document.getElementById("log-search").addEventListener("input", filterAll);
    document.getElementById("log-filters").addEventListener("submit", function (e) { e.preventDefault(); });

    function addLogs(rows) {
      var stick = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 8;
      rows.forEach(function (log) {
        if (seen[log.id]) return;
        seen[log.id] = true;
        var when = element("time", [exact(log.timestamp).slice(11, 19)], { datetime: log.timestamp, title: exact(log.timestamp) });
        var item = element("li", [when, " ", element("span", [log.level || ""], { class: "level level-" + log.level }), " ",
                                  element("span", [log.name || ""], { class: "logger" }), " ",
                                  element("span", [log.message || ""], { class: "message" })], { "data-level": log.level || "" });
        applyFilter(item);
        logs.appendChild(item);
        if (log.timestamp > newest) newest = log.timestamp;
      });
      document.getElementById("no-logs").hidden = logs.children.length > 0;
      if (stick) logs.scrollTop = logs.scrollHeight;
    }

    function renderTaskRuns(taskRuns) {
      var groups = [], byTask = {};
      taskRuns.forEach(function (tr) {
        var group = byTask[tr.task.id];
        if (!group) { group = byTask[tr.task.id] = { task: tr.task, parent: null, children: [] }; groups.push(group); }
        if (tr.map_index < 0) group.parent = tr; else group.children.push(tr);
      });
      var body = document.getElementById("task-runs");
      var open = {};
      body.querySelectorAll("tr[data-task] details[open]").forEach(function (d) { open[d.closest("tr").dataset.task] = true; });
      body.textContent = "";
      if (!groups.length) {
        body.appendChild(element("tr", [element("td", ["No task has run yet."], { colspan: "4", class: "empty" })], { class: "empty-row" }));
        return;
      }
      groups.forEach(function (group) {
        var row = group.parent || group.children[0];
        var first = element("td", [group.parent ? link("/" + slug + "/task-run/" + group.parent.id, group.parent.name || group.task.name)
                                                : group.task.name]);
        if (group.children.length) {
          var counts = {};
          group.children.forEach(function (c) { var s = c.state || "Pending"; counts[s] = (counts[s] || 0) + 1; });
          var summary = Object.keys(counts).sort().map(function (s) { return counts[s] + " " + s; }).join(", ");
          var list = element("ul", group.children.map(function (c) {
            return element("li", [link("/" + slug + "/task-run/" + c.id, c.name || group.task.name + "[" + c.map_index + "]"), " ", stateBadge(c.state)]);
          }));
          var details = element("details", [element("summary", [group.children.length + " mapped: " + summary]), list], { class: "children" });
          details.open = !!open[group.task.slug];
          first.appendChild(details);
        }
        body.appendChild(element("tr", [first, element("td", [stateBadge(row.state)]), element("td", [timeNode(row.start_time)]),
                                       element("td", [row.start_time ? duration(row.start_time, row.end_time) : "—"])],
                                 { "data-task": group.task.slug }));
      });
    }

    // The timeline: one bar per task (a mapped task's spans its children), from its first start to
    // its last end (or now while it runs), on the run's own time axis; colours are the state classes.
    function renderTimeline(flowRun) {
      var svg = document.getElementById("timeline");
      if (!svg) return;
      var NS = "http://www.w3.org/2000/svg";
      var rows = [], byTask = {};
      flowRun.task_runs.forEach(function (tr) {
        var row = byTask[tr.task.id];
        if (!row) { row = byTask[tr.task.id] = { name: tr.task.name, slug: tr.task.slug, start: null, end: null, state: null, open: false }; rows.push(row); }
        if (tr.map_index < 0 || row.state === null) row.state = tr.state;
        if (tr.start_time) {
          var s = new Date(tr.start_time).getTime();
          if (row.start === null || s < row.start) row.start = s;
          if (tr.end_time) { var e = new Date(tr.end_time).getTime(); if (row.end === null || e > row.end) row.end = e; }
          else row.open = true;
        }
      });
      var started = rows.filter(function (r) { return r.start !== null; });
      var now = Date.now();
      var first = started.reduce(function (m, r) { return Math.min(m, r.start); }, flowRun.start_time ? new Date(flowRun.start_time).getTime() : now);
      var last = started.reduce(function (m, r) { return Math.max(m, r.open || r.end === null ? now : r.end); },
                                flowRun.end_time ? new Date(flowRun.end_time).getTime() : (started.length ? first : now));
      var span = Math.max(1000, last - first);
      var LABEL = 180, WIDTH = 720, ROW = 20;
      svg.textContent = "";
      svg.setAttribute("viewBox", "0 0 " + WIDTH + " " + Math.max(1, rows.length) * ROW);
      document.getElementById("timeline-empty").hidden = started.length > 0;
      svg.hidden = started.length === 0;
      document.getElementById("timeline-span").textContent = started.length ? duration(new Date(first).toISOString(), new Date(last).toISOString()) : "";
      rows.forEach(function (row, index) {
        var group = document.createElementNS(NS, "g");
        group.setAttribute("data-task", row.slug);
        var label = document.createElementNS(NS, "text");
        label.setAttribute("x", "0"); label.setAttribute("y", String(index * ROW + 14));
        label.setAttribute("class", "tick");
        label.textContent = row.name.length > 28 ? row.name.slice(0, 27) + "…" : row.name;
        group.appendChild(label);
        if (row.start !== null) {
          var end = row.open || row.end === null ? now : row.end;
          var bar = document.createElementNS(NS, "rect");
          var x = LABEL + (row.start - first) / span * (WIDTH - LABEL);
          bar.setAttribute("x", x.toFixed(1));
          bar.setAttribute("y", String(index * ROW + 3));
          bar.setAttribute("width", Math.max(2, (end - row.start) / span * (WIDTH - LABEL)).toFixed(1));
          bar.setAttribute("height", String(ROW - 6));
          bar.setAttribute("class", KNOWN.indexOf(row.state) >= 0 ? "state-" + row.state : "state-other");
          bar.setAttribute("data-state", row.state || "");
          var title = document.createElementNS(NS, "title");
          title.textContent = row.name + ": " + (row.state || "—") + ", " + duration(new Date(row.start).toISOString(), row.open ? null : new Date(end).toISOString());
          bar.appendChild(title);
          group.appendChild(bar);
        }
        svg.appendChild(group);
      });
    }

    function render(flowRun) {
      latest = flowRun;
      var badge = document.getElementById("run-state");
      badge.textContent = "";
      badge.appendChild(stateBadge(flowRun.state));
      document.getElementById("run-message").textContent = flowRun.state_message || "";
      document.getElementById("run-duration").textContent = flowRun.start_time ? "ran " + duration(flowRun.start_time, flowRun.end_time) : "not started";
      var history = document.getElementById("state-history");
      history.textContent = "";
      flowRun.states.forEach(function (s) {
        history.appendChild(element("li", [stateBadge(s.state), " ", timeNode(s.timestamp), " ", element("span", [s.message || ""], { class: "message" })]));
      });
      renderTaskRuns(flowRun.task_runs);
      renderTimeline(flowRun);
      var final = FINAL.indexOf(flowRun.state) >= 0;
      root.dataset.final = final ? "true" : "false";
      document.getElementById("cancel-run").disabled = final;
      document.getElementById("restart-run").disabled = !final;
    }

    function poll() {
      timer = null;
      if (document.hidden) { schedule(); return; }
      // Ten seconds back: a batch from another process (the agent) may arrive late; ids dedupe.
      var since = new Date(Math.max(0, new Date(newest).getTime() - 10000)).toISOString();
      gql("FLOW_RUN", { id: id, since: since, log_order: "asc", log_limit: 1000 }).then(function (data) {
        if (!data.flow_run_by_pk) { showError("This flow run no longer exists."); return; }
        render(data.flow_run_by_pk);
        addLogs(data.log);
        schedule();
      }).catch(function (error) {
        showError("Live updates paused: " + error.message);
        timer = setTimeout(poll, 10000);
      });
    }

    function schedule() {
      if (root.dataset.final === "true") {
        pollsAfterFinal -= 1;
        if (pollsAfterFinal < 0) { document.getElementById("live").hidden = true; return; }
      } else {
        pollsAfterFinal = 5;
        document.getElementById("live").hidden = false;
      }
      timer = setTimeout(poll, 2000);
    }

    function restartPolling() {
      if (timer) clearTimeout(timer);
      root.dataset.final = "false";
      poll();
    }

    // The lines the server rendered carry their ids: a poll never shows one twice.
    logs.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = true; });

    document.getElementById("cancel-run").addEventListener("click", function (event) {
      busy(event.target, gql("CANCEL_FLOW_RUN", { input: { flow_run_id: id } })).then(restartPolling)
        .catch(function (error) { showError("The run was not cancelled: " + error.message); });
    });

    document.getElementById("restart-run").addEventListener("click", function (event) {
      var button = event.target;
      var unfinished = (latest ? latest.task_runs : []).filter(function (tr) {
        return ["Success", "Cached", "Mapped", "Skipped"].indexOf(tr.state) < 0;
      });
      var reset = unfinished.length
        ? gql("SET_TASK_RUN_STATES", { input: { states: unfinished.map(function (tr) {
            return { task_run_id: tr.id, state: { type: "Pending", message: "Restarted from the UI" } };
          }) } })
        : Promise.resolve();
      busy(button, reset.then(function () {
        return gql("SET_FLOW_RUN_STATES", { input: { states: [{ flow_run_id: id, state: { type: "Scheduled", message: "Restarted from the UI" } }] } });
      })).then(restartPolling).catch(function (error) { showError("The run was not restarted: " + error.message); });
    });

    poll();
  }

  // ---- the task-run page: live state, history and logs ---------------------------------------

  var taskRun = document.getElementById("task-run");
  if (taskRun) liveTaskRun(taskRun);

  function liveTaskRun(root) {
    var seen = {};
    var logs = document.getElementById("task-run-logs");
    var pollsAfterFinal = root.dataset.final === "true" ? 0 : 3;
    logs.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = true; });

    function render(tr, rows) {
      var badge = document.getElementById("task-run-state");
      badge.textContent = "";
      badge.appendChild(stateBadge(tr.state));
      document.getElementById("task-run-message").textContent = tr.state_message || "";
      var started = document.getElementById("task-run-started");
      started.textContent = "";
      started.appendChild(timeNode(tr.start_time));
      document.getElementById("task-run-duration").textContent = tr.start_time ? duration(tr.start_time, tr.end_time) : "not started";
      var history = document.getElementById("task-run-history");
      history.textContent = "";
      tr.states.forEach(function (s) {
        history.appendChild(element("li", [stateBadge(s.state), " ", timeNode(s.timestamp), " ", element("span", [s.message || ""], { class: "message" })]));
      });
      rows.forEach(function (log) {
        if (seen[log.id]) return;
        seen[log.id] = true;
        var when = element("time", [exact(log.timestamp).slice(11, 19)], { datetime: log.timestamp, title: exact(log.timestamp) });
        logs.appendChild(element("li", [when, " ", element("span", [log.level || ""], { class: "level level-" + log.level }), " ",
                                        element("span", [log.message || ""], { class: "message" })], { "data-level": log.level || "", "data-id": log.id }));
      });
      document.getElementById("no-logs").hidden = logs.children.length > 0;
      // Live until the task run and its flow run are both final (a restart may bring it back).
      root.dataset.final = FINAL.indexOf(tr.state) >= 0 && FINAL.indexOf(tr.flow_run.state) >= 0 ? "true" : "false";
    }

    function poll() {
      if (document.hidden) { schedule(); return; }
      gql("TASK_RUN", { id: root.dataset.id }).then(function (data) {
        if (!data.task_run_by_pk) { showError("This task run no longer exists."); return; }
        clearError();
        render(data.task_run_by_pk, data.log);
        schedule();
      }).catch(function (error) {
        showError("Live updates paused: " + error.message);
        setTimeout(poll, 10000);
      });
    }

    function schedule() {
      if (root.dataset.final === "true") {
        pollsAfterFinal -= 1;
        if (pollsAfterFinal < 0) { document.getElementById("live").hidden = true; return; }
      } else {
        pollsAfterFinal = 3;
        document.getElementById("live").hidden = false;
      }
      setTimeout(poll, 2000);
    }

    if (root.dataset.final !== "true") setTimeout(poll, 2000);
  }

  refreshTimes();
  setInterval(refreshTimes, 15000);
})();
