// The alerting rules, rendered to examples/alerts.yml by `make mixin`.
//
// Hidden fields become comments in the rendered YAML: header:: opens the
// file, section:: comes before a rule, comment:: between its alert line
// and its expr. $(name) in expressions and annotations is _config.name
// (config.libsonnet). Descriptions are folded as YAML folds >- scalars
// (lines joined with spaces); the rendered file keeps their lines.
local fold(s) = std.join(' ', std.split(std.rstripChars(s, '\n'), '\n'));

local header = |||
  Alerting rules for smtp_exporter (Prometheus 2.42 or later).

  Load them from prometheus.yml (rule_files: [alerts.yml]); check them with
    promtool check rules alerts.yml
    promtool test rules tests/*.yml
  and read RUNBOOK.md for what to do when one fires.

  Conventions:
  - severity: critical pages someone (mail is not flowing, or soon will not);
    warning goes to a ticket queue or chat (a signal to act on within days).
  - Every per-target alert keeps the exporter's target and module labels;
    the failure alerts add phase and reason, the reply alerts code and
    enhanced_code too, so that Alertmanager can group and route on them
    (e.g. group_by: [alertname, target]).
  - Labels and thresholds assume the scheduled results on /metrics (job
    smtp_exporter in prometheus.yml). The per-run alerts also work for the
    /probe jobs, whose relabelling adds the same target label; the counter
    and histogram alerts need the schedule, which alone keeps counters.
  - A failing probe pages once: the reasons with an alert of their own
    (authentication, certificate, STARTTLS) are left out of
    SMTPProbeFailing, so one broken server is one page. The warnings on
    reply counts (SMTPPermanentRejections, ...) may come along with it.
  - Thresholds are starting points for targets probed every 1 to 10 minutes;
    each is explained next to its rule. Tune them to your intervals.
|||;

local groups = [
  {
    name: 'smtp_exporter',
    rules: [
      {
        section:: |||
          The exporter itself. When it is down or stuck, every other alert in
          this file goes quiet: these are the ones that watch the watcher.
        |||,
        alert: 'SMTPExporterDown',
        comment:: |||
          5 minutes: longer than a restart, short enough that an SMTP outage
          during it would still be caught soon.
        |||,
        expr: 'up{$(exporterSelector)} == 0',
        'for': '5m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'smtp_exporter {{ $labels.instance }} is down',
          description: |||
            Prometheus has not been able to scrape the smtp_exporter at {{ $labels.instance }} for 5 minutes,
            so none of its SMTP targets is watched and no other SMTP alert can fire.
            Check that the process runs and what its log says, that it listens where prometheus.yml scrapes it
            (default :9799), and the network, TLS and basic auth between Prometheus and it (--web.config.file).
          |||,
          runbook_url: '$(runbookURL)#smtpexporterdown',
        },
      },
      {
        alert: 'SMTPProbeScrapeFailing',
        comment:: |||
          The /probe jobs of prometheus.yml: a failed scrape leaves no probe
          result, so the target's other alerts cannot fire.
        |||,
        expr: 'up{$(probeSelector)} == 0',
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'Prometheus cannot get /probe results for {{ $labels.target }} from {{ $labels.instance }} (job {{ $labels.job }})',
          description: |||
            Scrapes of /probe for {{ $labels.target }} in job {{ $labels.job }} have failed for 5 minutes, so
            this target has no probe results and its other alerts cannot fire.
            The exporter answers 400 when the target is not a name in its configuration (compare with its /config page,
            or give module= for an ad hoc host:port) and 403 for an ad hoc host:port unless it runs with --probe.allow-adhoc;
            a timeout means the probe outlasted scrape_timeout. Prometheus's Targets page shows the error.
          |||,
          runbook_url: '$(runbookURL)#smtpprobescrapefailing',
        },
      },
      {
        alert: 'SMTPExporterConfigReloadFailed',
        expr: 'smtp_exporter_config_last_reload_successful == 0',
        'for': '5m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'smtp_exporter {{ $labels.instance }} failed to reload its configuration',
          description: |||
            The last configuration reload of the smtp_exporter at {{ $labels.instance }} failed. It keeps probing with
            the configuration it had, so the latest changes are not in effect, and a restart would fail to load the file.
            Run smtp_exporter --config.file=FILE --config.check to see the error (file, line and field), fix it, and
            reload again (SIGHUP or POST /-/reload).
          |||,
          runbook_url: '$(runbookURL)#smtpexporterconfigreloadfailed',
        },
      },
      {
        alert: 'SMTPProbeResultsStale',
        comment:: |||
          A run finishes every interval, or every interval times the backoff
          factor (up to 8) while the target throttles. 15 minutes per unit of
          backoff, held for 15 more, is three missed runs of a 10m interval;
          raise both for longer intervals. The second branch catches a target
          that has never finished a run since it was configured.
        |||,
        expr: |||
          time() - probe_smtp_last_run_timestamp_seconds > 900 * smtp_exporter_scheduler_backoff_factor
          or on (job, instance, target, module)
          (
            smtp_exporter_scheduler_backoff_factor
            unless on (job, instance, target, module) probe_smtp_last_run_timestamp_seconds
          )
        |||,
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'No recent probe results for {{ $labels.target }}',
          description: |||
            The exporter at {{ $labels.instance }} has not finished a scheduled probe of {{ $labels.target }}
            (module {{ $labels.module }})
            {{- with printf `time() - probe_smtp_last_run_timestamp_seconds{job=%q,instance=%q,target=%q}` $labels.job $labels.instance $labels.target | query }}
            for {{ . | first | value | humanizeDuration }}{{ else }} since it was configured{{ end }}.
            Its per-run metrics still show the last result, so new failures of this target go unnoticed.
            Check smtp_exporter_scheduler_lag_seconds and smtp_exporter_probes_in_flight (all --probe.concurrency
            slots busy with slow targets), and the exporter's log and /history.
          |||,
          runbook_url: '$(runbookURL)#smtpproberesultsstale',
        },
      },
    ],
  },
  {
    name: 'smtp_probes',
    rules: [
      {
        section:: |||
          Probe failures. probe_smtp_failure_info (1 while the last probe
          failed, absent after a success) carries the phase and reason of the
          failure, so they become the alert's labels; the join with
          probe_success == 0 states the condition and guards against the two
          ever disagreeing. A change of reason during an outage (say timeout,
          then connect) starts the alert's for: again.
        |||,
        alert: 'SMTPProbeFailing',
        comment:: |||
          5 minutes: five failed runs at a 1m interval, so one blip does not
          page. A target probed every 5m or more holds one failure for a
          whole interval: give such targets a copy of this rule with a longer
          for (two intervals).
          The delivery prober's verdicts on the mail that arrived (not
          delivered, junk, authentication, bounce) have alerts of their own
          in smtp_delivery; its IMAP connect and login failures page here.
          The domain prober's checks (phases mx to dnsbl) have theirs in
          smtp_domain, which tell a dead secondary MX from a dead domain.
        |||,
        expr: |||
          (
            probe_smtp_failure_info{phase!~"auth|bounce|mx|ptr|spf|dmarc|dkim|mta_sts|tls_rpt|dane|dnsbl", reason!~"auth_failed|auth_required|cert_expired|cert_untrusted|cert_hostname|starttls_unavailable|not_delivered|spam_folder"}
            unless probe_smtp_failure_info{phase="wait", reason=~"spf|dkim|dmarc"}
          )
          and on (job, instance, target, module) (probe_success == 0)
        |||,
        'for': '5m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'SMTP probe of {{ $labels.target }} fails in phase {{ $labels.phase }}: {{ $labels.reason }}',
          description: |||
            {{ $labels.target }} (module {{ $labels.module }}) has failed every probe for 5 minutes, in phase
            {{ $labels.phase }} with reason {{ $labels.reason }}
            {{- $code := 0.0 }}
            {{- with printf `probe_smtp_reply_code{job=%q,instance=%q,target=%q,phase=%q}` $labels.job $labels.instance $labels.target $labels.phase | query }}{{ $code = . | first | value }}{{ end }}
            {{- $sel := printf `{target=%q,module=%q,phase=%q,reason=%q}` $labels.target $labels.module $labels.phase $labels.reason }}
            {{- with printf `sum by (code, enhanced_code) ((probe_smtp_replies_total%[1]s - probe_smtp_replies_total%[1]s offset 15m) > 0 or (probe_smtp_replies_total%[1]s unless probe_smtp_replies_total%[1]s offset 15m))` $sel | query }}
            (reply {{ range $i, $r := . | sortByLabel "enhanced_code" }}{{ if $i }}, {{ end }}{{ $r.Labels.code }}{{ with $r.Labels.enhanced_code }} {{ . }}{{ end }}{{ end }})
            {{- else }}{{ if $code }} (last reply {{ $code }}){{ else }} (no SMTP reply){{ end }}{{ end }}.
            {{ if ge $code 500.0 }}5xx is permanent: retries will not help until the cause is fixed.
            {{ else if ge $code 400.0 }}4xx is temporary: the server asks to retry later with backoff, but it has lasted 5 minutes.
            {{ end }}
            {{- if match "^(dns|connect|timeout|connection_lost)$" $labels.reason }}The exporter could not resolve, reach or keep talking to the server:
            check the target's DNS, that the server runs and its port is reachable from the exporter (firewall, routing), and its load.
            {{- else if match "^(service_unavailable|throttled|greylisted|mailbox_busy|local_error|insufficient_storage)$" $labels.reason }}Check
            rate limits and greylisting for the exporter's address, the server's load, and its queue and disk space.
            {{- else if match "^(tls_handshake|tls_required)$" $labels.reason }}Check TLS: protocol versions and ciphers both sides accept, the
            server's certificate and key files, and whether the module's tls setting matches what the port demands.
            {{- else if match "^(mailbox_unavailable|mailbox_full|message_too_large|relay_denied)$" $labels.reason }}Check
            the module's recipient (it exists, is under quota, its domain is accepted by this server), size limits and relay restrictions.
            {{- else if match "^(spf|dkim|dmarc|reputation|policy)$" $labels.reason }}Check the sender domain's SPF, DKIM and
            DMARC records (they must allow the exporter's address), blocklists for the exporter's IP and domain, and the server's policy filters.
            {{- else if eq $labels.reason "unexpected_reply" }}A negative test got a reply it must not get, e.g. the
            server accepted relaying it must refuse: treat an open relay as a security incident.
            {{- else if eq $labels.reason "protocol" }}The server sent a malformed or out-of-sequence reply or a 500-504 syntax
            error: check its log and anything between that rewrites SMTP (firewall SMTP inspection).
            {{- else }}Read the server's reply text in the exporter's log or /history.{{ end }}
            The failed run, with the server's words:
            $(exporterScheme)://{{ $labels.instance }}/history?target={{ $labels.target | urlquery }}&module={{ $labels.module | urlquery }}&last=failure
          |||,
          runbook_url: '$(runbookURL)#smtpprobefailing',
        },
      },
      {
        alert: 'SMTPAuthenticationFailing',
        comment:: |||
          Same 5 minutes as SMTPProbeFailing: a submission server that
          rejects its users' credentials stops all outgoing mail.
        |||,
        expr: |||
          probe_smtp_failure_info{phase="auth"}
          or probe_smtp_failure_info{reason=~"auth_failed|auth_required"}
        |||,
        'for': '5m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'SMTP authentication fails on {{ $labels.target }}: {{ $labels.reason }}',
          description: |||
            {{ $labels.target }} (module {{ $labels.module }}) has failed authentication for 5 minutes, in phase
            {{ $labels.phase }} with reason {{ $labels.reason }}
            {{- $reply := "" }}
            {{- with printf `probe_smtp_reply_code{job=%q,instance=%q,target=%q,phase=%q}` $labels.job $labels.instance $labels.target $labels.phase | query }}{{ $reply = . | first | value | printf "%.0f" }}{{ end }}
            {{- $sel := printf `{target=%q,module=%q,phase=%q,reason=%q}` $labels.target $labels.module $labels.phase $labels.reason }}
            {{- with printf `sum by (enhanced_code) ((probe_smtp_replies_total%[1]s - probe_smtp_replies_total%[1]s offset 15m) > 0 or (probe_smtp_replies_total%[1]s unless probe_smtp_replies_total%[1]s offset 15m))` $sel | query }}
            {{- range . | sortByLabel "enhanced_code" }}{{ with .Labels.enhanced_code }}{{ $reply = printf "%s %s" $reply . }}{{ end }}{{ end }}{{ end }}
            {{- with $reply }} (last reply {{ . }}){{ end }}.
            {{ if eq $labels.reason "auth_failed" }}The server rejected the credentials or the mechanism (535 5.7.8: wrong
            username or password, or a locked account; 534 5.7.9: mechanism too weak; no reply code: the mechanism is not offered).
            Check the module's username and password_file (a rotated password?) and the server's authentication backend.
            {{- else if eq $labels.reason "auth_required" }}The server demands authentication (530 5.7.0) that the module
            does not do: add auth to the module, or check the server's relay and recipient restrictions on this port.
            {{- else }}A {{ $labels.reason }} during AUTH usually means the server's authentication backend (e.g. Dovecot,
            saslauthd, LDAP) is slow or down; 454 4.7.0 is its temporary failure, so users cannot submit mail until it is back.{{ end }}
          |||,
          runbook_url: '$(runbookURL)#smtpauthenticationfailing',
        },
      },
      {
        section:: |||
          Replies, counted across runs (scheduled targets only). Negative tests
          (modules with expect_codes, which alone export
          probe_smtp_expectation_met) expect refusals and are left out.

          The counts are exact: x - x offset 30m for a series that existed 30
          minutes ago, its whole value for one created since, and increase()
          only after a counter reset (exporter restart). increase() alone
          would miss the first reply of every new code: the exporter creates
          the series at 1 when that reply comes, so Prometheus never sees the
          step from 0, and a new kind of rejection is exactly the news.
          Every rule keeps job and instance: two exporters watching one
          server raise two alerts, each with its own count and its own link.
        |||,
        alert: 'SMTPPermanentRejections',
        comment:: |||
          At least 2 permanent refusals of the same kind within 30 minutes:
          one could be a fluke, two are a pattern, and 30 minutes covers
          several runs even of a 10m target. No for: the window already
          smooths. EHLO answered 500/502 (an old server, the probe falls back
          to HELO) is not a rejection and is left out; so are negative tests.
          A series new in the window counts whole only if Prometheus has
          scraped its exporter for the whole window (up offset 30m): else
          the exporter may have counted it before Prometheus began, and the
          count is what Prometheus saw it grow (the description then names
          the shorter span instead of 30 minutes).
        |||,
        expr: |||
          sum by (job, instance, target, module, phase, code, enhanced_code, reason) (
              (probe_smtp_replies_total{class="5xx"} - probe_smtp_replies_total{class="5xx"} offset 30m) >= 0
            or
              (
                (probe_smtp_replies_total{class="5xx"} unless probe_smtp_replies_total{class="5xx"} offset 30m)
                and on (job, instance) (up offset 30m)
              )
            or
              (
                (probe_smtp_replies_total{class="5xx"} - min_over_time(probe_smtp_replies_total{class="5xx"}[30m]))
                unless on (job, instance) (up offset 30m)
              )
            or
              increase(probe_smtp_replies_total{class="5xx"}[30m])
          ) >= 2
          unless on (job, instance, target, module, phase, code) probe_smtp_replies_total{phase=~"ehlo|lhlo", code=~"500|502"}
          unless on (job, instance, target, module) probe_smtp_expectation_met
        |||,
        labels: { severity: 'warning' },
        annotations: {
          summary: '{{ $labels.target }} rejects with {{ $labels.code }} {{ $labels.enhanced_code }} ({{ $labels.reason }}) in phase {{ $labels.phase }}',
          description: |||
            {{ $labels.target }} (module {{ $labels.module }}) answered {{ $value | humanize }} times
            {{- with printf `up{job=%q,instance=%q} offset 30m` $labels.job $labels.instance | query }} in the last 30 minutes
            {{- else }}{{ with printf `time() - min_over_time(timestamp(up{job=%q,instance=%q})[30m:1m])` $labels.job $labels.instance | query }} in the
            {{ . | first | value | humanizeDuration }} of data Prometheus has of the last 30 minutes
            {{- else }} in the less than a minute of data Prometheus has{{ end }}{{ end }} with the
            permanent reply {{ $labels.code }}{{ with $labels.enhanced_code }} {{ . }}{{ end }} in phase {{ $labels.phase }},
            reason {{ $labels.reason }}. 5xx is permanent: retries will not help, and real mail meeting the same rule
            is bounced.
            {{ if eq $labels.phase "other" }}These are replies past the 50 label sets the exporter keeps per target
            (smtp_exporter_reply_labels_overflow_total counts them), so their phase and codes are not labels: read them
            in /history, and ask why the server varies its codes so much.
            {{- else if match "^(spf|dkim|dmarc)$" $labels.reason }}Check the sender domain's SPF, DKIM and DMARC records and
            that they allow the exporter's sending address.
            {{- else if eq $labels.reason "reputation" }}Check blocklists for the exporter's IP and the sender domain, and
            request delisting once the cause is fixed.
            {{- else if match "^(mailbox_unavailable|mailbox_full)$" $labels.reason }}Check the module's recipient: it
            exists, is enabled and under quota, and its domain is accepted by this server.
            {{- else if eq $labels.reason "relay_denied" }}Check the server's relay restrictions and that the module
            authenticates where relaying needs it.
            {{- else if eq $labels.reason "message_too_large" }}Check the server's message size limit.
            {{- else if eq $labels.reason "protocol" }}A 500-504 is a syntax or sequence error: check the server's log and
            anything between that rewrites SMTP.
            {{- else }}Check the recipient, the sender's SPF, DKIM and DMARC, blocklists, and the server's policy filters
            and log for the reply text.{{ end }}
          |||,
          runbook_url: '$(runbookURL)#smtppermanentrejections',
        },
      },
      {
        alert: 'SMTPTemporaryFailuresSustained',
        comment:: |||
          The same temporary reply in at least half of the runs of the last
          15 minutes, held for 15 more: deferrals that go on, not a burst or
          a single greylisting. A share of runs rather than a count, so that
          it means the same at any interval. A warning, not a page: senders
          retry, and the throttling reasons also slow the probing down (see
          SMTPTargetThrottled, which covers targets backed off too far to
          have runs in 15 minutes).
        |||,
        expr: |||
          (
            sum by (job, instance, target, module, phase, code, enhanced_code, reason) (
                (probe_smtp_replies_total{class="4xx"} - probe_smtp_replies_total{class="4xx"} offset 15m) >= 0
              or
                (probe_smtp_replies_total{class="4xx"} unless probe_smtp_replies_total{class="4xx"} offset 15m)
              or
                increase(probe_smtp_replies_total{class="4xx"}[15m])
            )
            / on (job, instance, target, module) group_left ()
            sum by (job, instance, target, module) (
                (probe_smtp_runs_total - probe_smtp_runs_total offset 15m) >= 0
              or
                (probe_smtp_runs_total unless probe_smtp_runs_total offset 15m)
              or
                increase(probe_smtp_runs_total[15m])
            )
          ) >= 0.5
          unless on (job, instance, target, module) probe_smtp_expectation_met
        |||,
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: '{{ $labels.target }} keeps deferring with {{ $labels.code }} {{ $labels.enhanced_code }} ({{ $labels.reason }}) in phase {{ $labels.phase }}',
          description: |||
            {{ $labels.target }} (module {{ $labels.module }}) has deferred at least half of its probes for 15 minutes
            ({{ $value | humanizePercentage }} of those in the last 15 minutes) with the temporary reply
            {{ $labels.code }}{{ with $labels.enhanced_code }} {{ . }}{{ end }} in phase {{ $labels.phase }}, reason
            {{ $labels.reason }}. 4xx is temporary: senders retry with backoff, so mail is delayed, not lost, until their
            queue lifetime runs out.
            {{ if eq $labels.reason "throttled" }}The server rate-limits: check its connection and message rate limits
            for the exporter's address and whether real senders are limited too.
            {{- else if eq $labels.reason "greylisted" }}Greylisting should pass on the retry: a greylist that never
            passes means the retry comes from another address or the greylist database is not kept.
            {{- else if match "^(service_unavailable|local_error|insufficient_storage|mailbox_busy)$" $labels.reason }}The
            server reports trouble of its own: check its load, queue, disk space and the log for the reply text.
            {{- else }}Check rate limits, greylisting and the server's load, and its log for the reply text.{{ end }}
          |||,
          runbook_url: '$(runbookURL)#smtptemporaryfailuressustained',
        },
      },
      {
        alert: 'SMTPTargetThrottled',
        comment:: |||
          The scheduler doubles a target's wait after each throttled,
          greylisted or service_unavailable result (2, 4, then 8 times its
          interval) and resets it after a success. 4 or more means two such
          results in a row; held 15 minutes, it is not one busy moment. (At
          2, one result of a 10m target would hold for 20 minutes.)
        |||,
        expr: 'smtp_exporter_scheduler_backoff_factor >= 4',
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: '{{ $labels.target }} is throttling the exporter (probed {{ $value }}x less often)',
          description: |||
            {{ $labels.target }} (module {{ $labels.module }}) has answered as throttled, greylisted or unavailable
            run after run for 15 minutes, so the exporter now waits {{ $value }} times its interval between probes
            {{- with printf `probe_smtp_failure_info{job=%q,instance=%q,target=%q}` $labels.job $labels.instance $labels.target | query }}
            {{- with first . }} (last failure: phase {{ .Labels.phase }}, reason {{ .Labels.reason }}){{ end }}{{ end }}.
            Throttling is a signal, not an outage: the server protects itself and mail is deferred, not lost.
            Check whether real senders are throttled too (the server's log) and its rate limits and load; if only the
            exporter is, allow its address or lengthen the target's interval.
          |||,
          runbook_url: '$(runbookURL)#smtptargetthrottled',
        },
      },
      {
        alert: 'SMTPPhaseSlow',
        comment:: |||
          p95 over 30 minutes above 5 seconds (10 for banner and data, which
          include greeting delays and content scanning), for 15 minutes: a
          third of the default 15s module timeout, so it warns before the
          phase turns into timeouts. The domain prober's checks are left out: each is
          many lookups or dialogs at once, and its slow MX is SMTPDomainMXDown's.
          The p95 is over the samples of the last run's gauge, which every
          target has by default (the latency histogram is per module unless
          --metrics.phase-histograms=target): scraped more often than it
          runs, each run counts a few times, all alike. A phase not reached
          has no sample, so an outage does not pull the p95 down.
          quantile_over_time never exceeds the slowest sample, and a phase
          that times out is measured up to its module's timeout: each
          exporter's series stays its own (no aggregation), so that a p95
          from one exporter is never quoted with another's labels.
        |||,
        expr: |||
          quantile_over_time(0.95, probe_smtp_phase_duration_seconds{phase!~"banner|data|mx|ptr|spf|dmarc|dkim|mta_sts|tls_rpt|dane|dnsbl"}[30m]) > 5
          or
          quantile_over_time(0.95, probe_smtp_phase_duration_seconds{phase=~"banner|data"}[30m]) > 10
        |||,
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'SMTP phase {{ $labels.phase }} of {{ $labels.target }} is slow: p95 {{ $value | humanizeDuration }}',
          description: |||
            The 95th percentile of phase {{ $labels.phase }} on {{ $labels.target }} (module {{ $labels.module }}), measured by the
            exporter at {{ $labels.instance }}, has been {{ $value | humanizeDuration }} over the last 30 minutes
            {{- with printf `max_over_time(probe_smtp_phase_duration_seconds{job=%q,instance=%q,target=%q,module=%q,phase=%q}[30m])` $labels.job $labels.instance $labels.target $labels.module $labels.phase | query }}
            (slowest run {{ . | first | value | humanizeDuration }};{{ else }} ({{ end }} threshold 5s, 10s for banner and data). Close to the
            module's timeout (15s by default) it turns into timeouts; real senders see the same delay.
            {{ if eq $labels.phase "resolve" }}Check the DNS resolver the exporter uses.
            {{- else if eq $labels.phase "connect" }}Check the network path and the server's connection backlog.
            {{- else if match "^(tls|starttls)$" $labels.phase }}Check the server's CPU and TLS session cache.
            {{- else if match "^(banner|ehlo|lhlo)$" $labels.phase }}Check the server's load and its lookups on connect:
            reverse DNS of the client, DNS blocklists, greeting delays such as postscreen.
            {{- else if eq $labels.phase "auth" }}Check the authentication backend (Dovecot, saslauthd, LDAP).
            {{- else if match "^(mail|rcpt)$" $labels.phase }}Check the policy services the server consults (SPF, greylisting,
            recipient verification and callouts).
            {{- else if eq $labels.phase "data" }}Check the content filters (milters, spam and virus scanners).
            {{- else }}Check the server's load and log.{{ end }}
          |||,
          runbook_url: '$(runbookURL)#smtpphaseslow',
        },
      },
    ],
  },
  {
    name: 'smtp_tls',
    rules: [
      {
        section:: |||
          probe_ssl_earliest_cert_expiry is the earliest NotAfter over every
          certificate the server presents, leaf and intermediates alike (as in
          blackbox_exporter). Thresholds: 21 days warns while an ACME renewal
          (due at 30 days left) has failed for a while; 7 days pages.
        |||,
        alert: 'SMTPCertificateExpiresSoon',
        expr: '(probe_ssl_earliest_cert_expiry - time()) / 86400 < 21 >= 7',
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'Certificate of {{ $labels.target }} expires in {{ printf "%.0f" $value }} days',
          description: |||
            A certificate that {{ $labels.target }} (module {{ $labels.module }}) presents expires in {{ printf "%.1f" $value }} days
            {{- with printf `probe_ssl_earliest_cert_expiry{job=%q,instance=%q,target=%q}` $labels.job $labels.instance $labels.target | query }}
            ({{ . | first | value | humanizeTimestamp }}){{ end }}.
            Renew it now, while there is time. If it is renewed automatically (ACME), the renewal has been failing: check
            its log. If the file is new, the server has not reloaded it (most MTAs read certificates only at start or reload),
            or an intermediate in the served chain is the one expiring.
          |||,
          runbook_url: '$(runbookURL)#smtpcertificateexpiressoon',
        },
      },
      {
        alert: 'SMTPCertificateExpiresVerySoon',
        expr: '(probe_ssl_earliest_cert_expiry - time()) / 86400 < 7 > 0',
        'for': '15m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'Certificate of {{ $labels.target }} expires in {{ printf "%.1f" $value }} days',
          description: |||
            A certificate that {{ $labels.target }} (module {{ $labels.module }}) presents expires in {{ printf "%.1f" $value }} days
            {{- with printf `probe_ssl_earliest_cert_expiry{job=%q,instance=%q,target=%q}` $labels.job $labels.instance $labels.target | query }}
            ({{ . | first | value | humanizeTimestamp }}){{ end }}.
            After that, senders and clients that verify certificates (MTA-STS, DANE, mail clients on submission ports)
            refuse to deliver. Renew it and reload the server today; if the file is new, the server has not reloaded it,
            or an intermediate in the served chain is the one expiring.
          |||,
          runbook_url: '$(runbookURL)#smtpcertificateexpiresverysoon',
        },
      },
      {
        alert: 'SMTPCertificateExpired',
        comment:: |||
          No for: an expired certificate does not get better by waiting.
        |||,
        expr: |||
          probe_smtp_failure_info{reason="cert_expired"}
          or on (job, instance, target, module)
          (probe_ssl_earliest_cert_expiry - time() <= 0)
        |||,
        labels: { severity: 'critical' },
        annotations: {
          summary: '{{ $labels.target }} presents an expired certificate',
          description: |||
            {{ $labels.target }} (module {{ $labels.module }}) presents a certificate outside its validity period
            {{- with printf `probe_ssl_earliest_cert_expiry{job=%q,instance=%q,target=%q}` $labels.job $labels.instance $labels.target | query }}
            (earliest expiry in the chain: {{ . | first | value | humanizeTimestamp }}){{ end }}.
            {{ if $labels.reason }}Verification fails, so every probe fails in phase {{ $labels.phase }}, and senders
            and clients that verify certificates (MTA-STS, DANE, mail clients on submission ports) refuse to deliver.
            Renew the certificate and reload the server (most MTAs read certificates only at start or reload).
            A certificate that is not valid yet counts as expired too: check the clocks of the server and the exporter.
            {{- else }}{{ with printf `probe_smtp_tls_verified{job=%q,instance=%q,target=%q} == 1` $labels.job $labels.instance $labels.target | query }}The
            chain still verifies through another path, so an expired intermediate or cross-signed certificate is
            still served: remove it from the server's chain file, as older clients fail on it.
            {{- else }}The module does not verify (insecure_skip_verify), so the probe passes, but senders and
            clients that verify refuse to deliver: renew the certificate and reload the server.{{ end }}{{ end }}
          |||,
          runbook_url: '$(runbookURL)#smtpcertificateexpired',
        },
      },
      {
        alert: 'SMTPCertificateNotVerified',
        comment:: |||
          The module verifies (the default) and verification fails, so the
          probe fails; this alert replaces SMTPProbeFailing for it.
        |||,
        expr: 'probe_smtp_failure_info{reason=~"cert_untrusted|cert_hostname"}',
        'for': '5m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'Certificate of {{ $labels.target }} does not verify: {{ $labels.reason }}',
          description: |||
            The certificate of {{ $labels.target }} (module {{ $labels.module }}) has failed verification for 5 minutes
            (phase {{ $labels.phase }}, reason {{ $labels.reason }}), so every probe fails.
            {{ if eq $labels.reason "cert_hostname" }}The certificate does not name the host the module connects to
            (tls_config.server_name, else the target's host): check the names (SANs) in the certificate, or that the
            server's certificate matches its MX or submission host name.
            {{- else }}The chain does not lead to a trusted root: usually the server does not send its intermediate
            certificates, or it uses a private CA the module does not know (set tls_config.ca_file), or a self-signed certificate.{{ end }}
            Senders and clients that verify (MTA-STS, DANE, mail clients) refuse to deliver. The verification error is in
            the failed run: $(exporterScheme)://{{ $labels.instance }}/history?target={{ $labels.target | urlquery }}&module={{ $labels.module | urlquery }}&last=failure
          |||,
          runbook_url: '$(runbookURL)#smtpcertificatenotverified',
        },
      },
      {
        alert: 'SMTPCertificateVerificationSkipped',
        comment:: |||
          The certificate does not verify, but the module has
          insecure_skip_verify, so the probe goes on. Expired certificates
          have their own alert. One hour: this is configuration, not an event.
        |||,
        expr: |||
          probe_smtp_tls_verified == 0
          unless on (job, instance, target, module) probe_smtp_failure_info{reason=~"cert_expired|cert_untrusted|cert_hostname"}
          unless on (job, instance, target, module) (probe_ssl_earliest_cert_expiry - time() <= 0)
        |||,
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'Certificate of {{ $labels.target }} does not verify (ignored by insecure_skip_verify)',
          description: |||
            The certificate of {{ $labels.target }} (module {{ $labels.module }}) does not verify against the module's roots
            and server name, and the module accepts it anyway (insecure_skip_verify). Senders that verify (MTA-STS, DANE,
            mail clients) refuse it, while opportunistic TLS on port 25 still works. Fix the certificate, or give the module
            the private CA (tls_config.ca_file) and drop insecure_skip_verify, so that this alert becomes a real check.
            The verification error is in a probe's dialog (the probe passes, so there is no failed run to show):
            $(exporterScheme)://{{ $labels.instance }}/probe?target={{ $labels.target | urlquery }}&debug=true
          |||,
          runbook_url: '$(runbookURL)#smtpcertificateverificationskipped',
        },
      },
      {
        alert: 'SMTPSTARTTLSNotOffered',
        comment:: |||
          Either a module with tls: starttls fails for want of STARTTLS, or
          (any module) the first EHLO reply no longer lists STARTTLS although
          it did within the last 7 days. A server that is down sends no EHLO
          reply, and the exporter then omits probe_smtp_starttls_offered; one
          that refuses EHLO (code 400 or above) lists nothing either, so the
          reply must be positive. After 7 days without STARTTLS the second
          case resolves on its own.
        |||,
        expr: |||
          probe_smtp_failure_info{reason="starttls_unavailable"}
          or on (job, instance, target, module)
          (
            probe_smtp_starttls_offered == 0
            and on (job, instance, target, module) max_over_time(probe_smtp_starttls_offered[7d]) == 1
            and on (job, instance, target, module) probe_smtp_reply_code{phase=~"ehlo|lhlo"} < 400
          )
        |||,
        'for': '5m',
        labels: { severity: 'critical' },
        annotations: {
          summary: '{{ $labels.target }} no longer offers STARTTLS',
          description: |||
            {{ if $labels.reason }}{{ $labels.target }} (module {{ $labels.module }}) did not offer STARTTLS, or refused it,
            for 5 minutes; the module requires it (tls: starttls), so every probe fails in phase {{ $labels.phase }}
            {{- with printf `probe_smtp_reply_code{job=%q,instance=%q,target=%q,phase=%q}` $labels.job $labels.instance $labels.target $labels.phase | query }}
            (last reply {{ . | first | value }}){{ end }}.
            {{- else }}The EHLO reply of {{ $labels.target }} (module {{ $labels.module }}) has not listed STARTTLS for
            5 minutes, although it did within the last 7 days.{{ end }}
            Mail to this server now travels in clear text, and senders that enforce MTA-STS or DANE defer it.
            Check the server's TLS settings first (a missing or unreadable certificate or key file makes many MTAs drop
            STARTTLS silently), then anything between that rewrites EHLO replies (firewall SMTP inspection strips STARTTLS).
          |||,
          runbook_url: '$(runbookURL)#smtpstarttlsnotoffered',
        },
      },
      {
        alert: 'SMTPTLSVersionOutdated',
        comment:: |||
          Go names versions "SSLv3", "TLS 1.0", "TLS 1.1", "TLS 1.2" and
          "TLS 1.3" (crypto/tls.VersionName). The probe offers up to TLS 1.3,
          so an old version means the server supports nothing newer.
        |||,
        expr: 'probe_tls_version_info{version=~"TLS 1\\\\.[01]|SSL.*"} == 1',
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: '{{ $labels.target }} negotiates {{ $labels.version }}',
          description: |||
            {{ $labels.target }} (module {{ $labels.module }}) negotiated {{ $labels.version }} for 15 minutes although the probe
            offers up to TLS 1.3, so the server supports nothing newer. TLS 1.0 and 1.1 are deprecated (RFC 8996) and
            many senders refuse them. The probe accepts them only because the module allows it (tls_config.min_version);
            by default such a handshake fails. Enable TLS 1.2 and 1.3 on the server (its TLS library and protocol settings).
          |||,
          runbook_url: '$(runbookURL)#smtptlsversionoutdated',
        },
      },
    ],
  },
  {
    name: 'smtp_delivery',
    rules: [
      {
        section:: |||
          The delivery prober (prober: delivery) sends a message and looks for
          it over IMAP. Its verdicts on the mail's journey are per-run gauges:
          probe_smtp_failure_info{phase="wait"|"bounce"} for a failed run, and
          probe_delivery_* for a message that was seen (absent otherwise). The
          scheduled path adds counters of lost, late and bounced messages and a
          histogram of the time to inbox, which SMTPDeliverySlow,
          SMTPDeliveryLate and SMTPDeliveryLosing need.
          Delivery runs take up to delivery_timeout (default 5m) and are
          usually scheduled every 5 to 15 minutes, so every for: below spans at
          least two runs of a 5m interval; give targets probed less often a copy
          with a longer for.
        |||,
        alert: 'SMTPDeliveryNotDelivered',
        comment:: |||
          The message was accepted but never showed up in the mailbox within
          delivery_timeout, and no bounce about it came back.
        |||,
        expr: |||
          probe_smtp_failure_info{phase="wait", reason="not_delivered"}
          and on (job, instance, target, module) (probe_success == 0)
        |||,
        'for': '10m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'Mail sent through {{ $labels.target }} does not arrive',
          description: |||
            The delivery probe {{ $labels.target }} (module {{ $labels.module }}) has, for 10 minutes, had its message
            accepted by the sending server but not seen in the watched mailbox folders within delivery_timeout
            (phase {{ $labels.phase }}, reason {{ $labels.reason }}), and no bounce came back.
            Mail is stuck in a queue on the sending side, deferred by the receiver, or filed somewhere the probe does not
            look. Check the sending server's queue (mailq) and log for the message first, then the receiver's log and filters.
            The failed run: $(exporterScheme)://{{ $labels.instance }}/history?target={{ $labels.target | urlquery }}&module={{ $labels.module | urlquery }}&last=failure
          |||,
          runbook_url: '$(runbookURL)#smtpdeliverynotdelivered',
        },
      },
      {
        alert: 'SMTPDeliverySlow',
        comment:: |||
          p95 of the time to inbox over 1 hour above 2 minutes, from the
          histogram of the scheduled runs (only messages that were seen: a
          lost one is SMTPDeliveryNotDelivered's and SMTPDeliveryLosing's).
          The threshold must stay below the modules' delivery_timeout
          (default 5m), which no measured time can pass; 2 minutes is where
          users notice, well above a healthy path's seconds. 120 is a bucket
          bound of the histogram, so the comparison is exact; change both
          numbers together. At a 5m interval an hour holds only 12 messages
          and its p95 is the slowest of them: the second clause asks for two
          messages above the threshold, so one greylisted message is not a
          trend. increase() can overstate a count by its extrapolation, never
          understate it, so >= 2 means two. (le=~ because Prometheus 3
          writes the bound as 120.0.)
        |||,
        expr: |||
          histogram_quantile(0.95, rate(probe_delivery_inbox_latency_seconds_bucket[1h])) > 120
          and on (job, instance, target, module)
          (
            increase(probe_delivery_inbox_latency_seconds_count[1h])
            - ignoring (le) increase(probe_delivery_inbox_latency_seconds_bucket{le=~"120(\\.0)?"}[1h])
          ) >= 2
        |||,
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'Mail through {{ $labels.target }} takes {{ $value | humanizeDuration }} to arrive (p95 over 1h)',
          description: |||
            For the delivery probe {{ $labels.target }} (module {{ $labels.module }}), the 95th percentile of the time
            from the sending server's 250 to the message appearing in the mailbox has been {{ $value | humanizeDuration }}
            over the last hour, above 2 minutes, for 15 minutes.
            Check where the time goes: the Received: fields' timestamps of a probe message (its hops) tell a queue on
            the sending side from a slow receiver (greylisting, content filters); then the sending server's queue and
            the receiver's deferrals in its log.
          |||,
          runbook_url: '$(runbookURL)#smtpdeliveryslow',
        },
      },
      {
        alert: 'SMTPDeliveryLate',
        comment:: |||
          Probe messages that turned up after their run had given up on them
          (failed with not_delivered), found by a later run's clean-up: at
          least two in 2 hours. One may be a message a restart of the
          exporter left behind; two say the path is at times slower than
          delivery_timeout. Together with SMTPDeliveryNotDelivered or
          SMTPDeliveryLosing it tells that the mail was slow, not lost.
        |||,
        expr: |||
          increase(probe_delivery_late_total[2h]) >= 2
        |||,
        labels: { severity: 'warning' },
        annotations: {
          summary: 'Mail through {{ $labels.target }} arrives after the delivery timeout',
          description: |||
            {{ $value | printf "%.0f" }} messages of the delivery probe {{ $labels.target }} (module {{ $labels.module }})
            arrived in the mailbox in the last 2 hours after their run had given up waiting (delivery_timeout) and
            reported them not delivered. The mail was delayed, not lost.
            Find where the time goes as for a slow delivery (the Received: timestamps of a late message: a queue on the
            sending side, greylisting or filters at the receiver); if the path is slow by design, raise the module's
            delivery_timeout above its normal delay.
          |||,
          runbook_url: '$(runbookURL)#smtpdeliverylate',
        },
      },
      {
        alert: 'SMTPDeliveryLosing',
        comment:: |||
          More than 5% of the messages the sending server accepted (its 250
          after DATA) over 6 hours were not seen within delivery_timeout, and
          at least two. SMTPDeliveryNotDelivered pages while runs fail in a
          row; this one sees losses that come and go (every fifth run, say)
          and never hold a failure for its 10 minutes. During an outage it
          comes along with SMTPDeliveryNotDelivered, and it stays for up to 6
          hours after.
        |||,
        expr: |||
          (
            sum by (job, instance, target, module) (increase(probe_delivery_lost_total[6h]))
            / sum by (job, instance, target, module) (increase(probe_smtp_replies_total{phase="data", class="2xx"}[6h]))
          ) > 0.05
          and on (job, instance, target, module)
          sum by (job, instance, target, module) (increase(probe_delivery_lost_total[6h])) >= 2
        |||,
        labels: { severity: 'warning' },
        annotations: {
          summary: '{{ $value | humanizePercentage }} of the mail through {{ $labels.target }} does not arrive (over 6h)',
          description: |||
            {{ $value | humanizePercentage }} of the messages that the sending server accepted for the delivery probe
            {{ $labels.target }} (module {{ $labels.module }}) in the last 6 hours did not show up in the mailbox within
            delivery_timeout, more than 5%.
            Look up the lost runs in the exporter's /history and their messages in the sending server's log: deferred
            (a 4xx from the next hop: greylisting, rate limits), discarded or quarantined by a filter, or filed in a
            folder the module does not watch. If SMTPDeliveryLate fires too, the messages arrive, only after the timeout.
          |||,
          runbook_url: '$(runbookURL)#smtpdeliverylosing',
        },
      },
      {
        alert: 'SMTPDeliveryInJunk',
        comment:: |||
          The message lands in a junk folder: failed with spam_folder
          (modules with require_inbox, whose failure labels the alert then
          carries), or seen there by placement (any module). A spam_folder
          failure comes with the same placement: the or keeps one alert per
          target.
        |||,
        expr: |||
          probe_smtp_failure_info{reason="spam_folder"}
          or on (job, instance, target, module)
          probe_delivery_placement_info{folder="junk"} == 1
        |||,
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'Mail through {{ $labels.target }} lands in junk',
          description: |||
            The delivery probe {{ $labels.target }} (module {{ $labels.module }}) has found its message in a junk
            folder for 15 minutes{{ with $labels.reason }} (reason {{ . }}: the module requires the inbox, so every run fails){{ end }}.
            The receiver's spam filter distrusts this mail: check its authentication results first (SMTPDeliveryAuthNotPassing,
            probe_delivery_auth_result_info), then blocklists for the sending IP and domain, and the spam headers the
            receiver added (the message's X-Spam-* fields; probe_delivery_spam_flagged).
          |||,
          runbook_url: '$(runbookURL)#smtpdeliveryinjunk',
        },
      },
      {
        alert: 'SMTPDeliveryAuthNotPassing',
        comment:: |||
          The receiver's verdict (its Authentication-Results, from the trusted
          authserv_id) for spf, dkim or dmarc is anything but pass: fail,
          softfail, none, temperror, ... One alert per method and result.
        |||,
        expr: |||
          probe_delivery_auth_result_info{method=~"spf|dkim|dmarc", result!="pass"} == 1
        |||,
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: '{{ $labels.method | toUpper }} does not pass for mail through {{ $labels.target }}: {{ $labels.result }}',
          description: |||
            The receiver of the delivery probe {{ $labels.target }} (module {{ $labels.module }}) has judged
            {{ $labels.method | toUpper }} {{ $labels.result }} for 15 minutes.
            {{ if eq $labels.method "spf" }}The sending server's IP is not allowed by the envelope sender domain's SPF
            record: compare the record (dig TXT) with the IP the receiver saw (the first Received: field).
            {{- else if eq $labels.method "dkim" }}The signature is missing or does not verify: check that the sending
            server signs (its milter and log), that the selector's TXT record at SELECTOR._domainkey publishes the key
            it signs with, and that nothing between rewrites the message.
            {{- else }}Neither a passing SPF nor a passing DKIM is aligned with the From: domain: check SPF and DKIM
            first, then that the envelope sender or the DKIM d= domain matches the From: domain (alignment).{{ end }}
            Receivers with a DMARC policy of quarantine or reject file or refuse such mail.
          |||,
          runbook_url: '$(runbookURL)#smtpdeliveryauthnotpassing',
        },
      },
      {
        alert: 'SMTPDeliveryBounced',
        comment:: |||
          A bounce (DSN) about the message came back instead of the message:
          the run fails in phase bounce with the bounce's reason. One bounce
          is already a verdict, but the gauge holds until the next run: 10m
          is two runs at a 5m interval, so a single transient bounce does not
          page.
          Temporary (4xx) bounces page as well as permanent (5xx) ones: either
          way the message did not arrive within delivery_timeout, which pages
          as SMTPDeliveryNotDelivered when no bounce explains it, and a 4xx
          class does not even mean the mail is still coming (a DSN that gives
          up after retrying, 4.4.7, is class 4xx too). The class, from
          probe_delivery_bounces_total on the scheduled path, goes into the
          description to say what follows.
        |||,
        expr: |||
          probe_smtp_failure_info{phase="bounce"}
          and on (job, instance, target, module) (probe_success == 0)
        |||,
        'for': '10m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'Mail through {{ $labels.target }} bounces: {{ $labels.reason }}',
          description: |||
            The messages of the delivery probe {{ $labels.target }} (module {{ $labels.module }}) have bounced for
            10 minutes with reason {{ $labels.reason }}: a server on the way refused them after the sending server
            had accepted them.
            {{- $classes := "" }}
            {{- $sel := printf `{target=%q,module=%q,reason=%q}` $labels.target $labels.module $labels.reason }}
            {{- with printf `sum by (class) ((probe_delivery_bounces_total%[1]s - probe_delivery_bounces_total%[1]s offset 15m) > 0 or (probe_delivery_bounces_total%[1]s unless probe_delivery_bounces_total%[1]s offset 15m))` $sel | query }}
            {{- range . | sortByLabel "class" }}{{ $classes = printf "%s %s" $classes .Labels.class }}{{ end }}{{ end }}
            {{- if match "5xx" $classes }} 5xx is permanent: the message was returned, and retries will not help until the cause is fixed.
            {{- else if match "4xx" $classes }} 4xx is temporary: the reporting server still retries (a delayed DSN) or gave up
            after retrying (4.4.7); either way the mail is late.{{ end }}
            The bounce's code, enhanced code and text (the refusing server's own words) are in the failed run,
            $(exporterScheme)://{{ $labels.instance }}/history?target={{ $labels.target | urlquery }}&module={{ $labels.module | urlquery }}&last=failure; the reason's entry in the runbook says where to look first.
          |||,
          runbook_url: '$(runbookURL)#smtpdeliverybounced',
        },
      },
      {
        alert: 'SMTPDeliveryBounceMailboxDown',
        comment:: |||
          The mailbox bounces come back to (delivery.bounce_imap) cannot be
          logged in to. The runs go on, but a bounce is not seen: a message
          that bounces fails as not_delivered instead, and its DSNs pile up.
          The gauge is there only for modules with a bounce_imap of their
          own. 15 minutes: three runs at a 5m interval.
        |||,
        expr: |||
          probe_delivery_bounce_mailbox_up == 0
        |||,
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'The bounce mailbox of {{ $labels.target }} cannot be read',
          description: |||
            The delivery probe {{ $labels.target }} (module {{ $labels.module }}) has not been able to log in to its
            bounce mailbox (delivery.bounce_imap) for 15 minutes. Bounces go unseen meanwhile: a message that bounces
            is reported not delivered, without the refusing server's reason.
            Check the mailbox's address and TLS settings, its credentials (a rotated password or an expired OAuth
            token in password_file or token_file), and the exporter's log for the IMAP error.
          |||,
          runbook_url: '$(runbookURL)#smtpdeliverybouncemailboxdown',
        },
      },
    ],
  },
  {
    name: 'smtp_domain',
    rules: [
      {
        section:: |||
          The domain prober (prober: domain): a mail domain's MX hosts and the
          records senders read. probe_domain_check_info{check, result, reason}
          is 1 for each check's verdict (pass, warn, fail, or error when DNS
          could not tell); the run's first failure is also
          probe_smtp_failure_info, which SMTPProbeFailing leaves to these
          rules. Records change by hand and slowly: most rules wait an hour,
          the ones that stop mail from arriving 10 to 15 minutes.
        |||,
        alert: 'SMTPDomainMXDown',
        comment:: |||
          One MX host (or one address family of it) accepts no session
          while another does: mail still arrives, through the others, but
          senders waste their retries on it, and the domain has lost its
          redundancy. The second branch is a host whose name has no address
          left: it has no probe_domain_mx_up series, only the count.
        |||,
        expr: |||
          (
            probe_domain_mx_up == 0
            and on (job, instance, target, module) probe_domain_mx_hosts_accepting > 0
          )
          or on (job, instance, target, module)
          (
            probe_domain_mx_hosts_accepting < probe_domain_mx_hosts
            and probe_domain_mx_hosts_accepting > 0
          )
        |||,
        'for': '15m',
        labels: { severity: 'warning' },
        annotations: {
          summary: '{{ with $labels.mx }}MX {{ . }} ({{ $labels.family }}){{ else }}An MX host{{ end }} of {{ $labels.target }} accepts no mail',
          description: |||
            {{ with $labels.mx }}MX host {{ . }} of {{ $labels.target }} (module {{ $labels.module }}) has accepted no SMTP
            session on its {{ $labels.family }} addresses{{ else }}An MX host of {{ $labels.target }} (module {{ $labels.module }})
            has had no address that resolves{{ end }} for 15 minutes, while other MX hosts accept mail. Mail still arrives
            through them, but senders spend retries on this one, and the domain has lost its redundancy.
            Run smtp_exporter probe --module={{ $labels.module }} {{ $labels.target }} for each address's session and why it failed.
          |||,
          runbook_url: '$(runbookURL)#smtpdomainmxdown',
        },
      },
      {
        alert: 'SMTPDomainMXAllDown',
        comment:: |||
          No MX host of the domain accepts a session (or its MX records do
          not resolve): mail to it queues at the senders, and bounces after
          their retry time. A null MX domain accepts no mail on purpose.
        |||,
        expr: |||
          probe_domain_mx_hosts_accepting == 0
          unless on (job, instance, target, module) probe_domain_null_mx == 1
        |||,
        'for': '10m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'No MX of {{ $labels.target }} accepts mail',
          description: |||
            None of the MX hosts of {{ $labels.target }} (module {{ $labels.module }}) has accepted an SMTP session for
            10 minutes{{ with printf `probe_domain_mx_hosts{job=%q,instance=%q,target=%q,module=%q} == 0` $labels.job $labels.instance $labels.target $labels.module | query }},
            and no MX host was found: its MX records or their addresses did not resolve{{ end }}.
            Senders queue the domain's mail and bounce it after their retry time (days).
            Run smtp_exporter probe --module={{ $labels.module }} {{ $labels.target }} to see each host's sessions and the MX lookup.
          |||,
          runbook_url: '$(runbookURL)#smtpdomainmxalldown',
        },
      },
      {
        alert: 'SMTPDomainDANEMismatch',
        comment:: |||
          DNSSEC-validated TLSA records do not match what an MX presents (or
          it no longer offers STARTTLS): DANE-validating senders (Postfix
          with dane, Microsoft 365, many providers) refuse to deliver to it.
        |||,
        expr: |||
          probe_domain_check_info{check="dane", result="fail"} == 1
        |||,
        'for': '15m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'DANE fails for an MX of {{ $labels.target }}: {{ $labels.reason }}',
          description: |||
            The TLSA records of an MX host of {{ $labels.target }} (module {{ $labels.module }}) have not matched what
            its SMTP session presents for 15 minutes (reason {{ $labels.reason }}). DANE-validating senders do not
            deliver to that host. Usually a certificate or key was renewed without updating _25._tcp TLSA first.
          |||,
          runbook_url: '$(runbookURL)#smtpdomaindanemismatch',
        },
      },
      {
        alert: 'SMTPDomainMTASTSEnforceBroken',
        comment:: |||
          The policy is in enforce mode and an MX is not covered by its mx:
          patterns, presents a certificate not valid for its name, or offers
          no STARTTLS: MTA-STS senders (Gmail, Microsoft 365) refuse it.
        |||,
        expr: |||
          probe_domain_check_info{check="mta_sts", result="fail", reason!="mta_sts_invalid"}
          and on (job, instance, target, module) probe_domain_mta_sts_mode_info{mode="enforce"}
        |||,
        'for': '15m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'MTA-STS enforce policy of {{ $labels.target }} rejects an MX: {{ $labels.reason }}',
          description: |||
            {{ $labels.target }} (module {{ $labels.module }}) publishes an MTA-STS policy in enforce mode, and for 15 minutes
            an MX host has failed it (reason {{ $labels.reason }}). Senders that honour MTA-STS do not deliver to that host.
          |||,
          runbook_url: '$(runbookURL)#smtpdomainmtastsenforcebroken',
        },
      },
      {
        alert: 'SMTPDomainMTASTSFailing',
        comment:: |||
          The rest of MTA-STS: an invalid record or policy, or a testing
          mode policy that would reject an MX once enforced.
        |||,
        expr: |||
          probe_domain_check_info{check="mta_sts", result="fail"}
          unless on (job, instance, target, module)
          (
            probe_domain_check_info{check="mta_sts", result="fail", reason!="mta_sts_invalid"}
            and on (job, instance, target, module) probe_domain_mta_sts_mode_info{mode="enforce"}
          )
        |||,
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'MTA-STS of {{ $labels.target }} fails: {{ $labels.reason }}',
          description: |||
            The MTA-STS check of {{ $labels.target }} (module {{ $labels.module }}) has failed for an hour with reason
            {{ $labels.reason }}. {{ if eq $labels.reason "mta_sts_invalid" }}The _mta-sts record or the policy at
            https://mta-sts.{{ $labels.target }}/.well-known/mta-sts.txt is missing, unreachable or invalid: new senders
            see no policy, and those that cached one keep it until its max_age ends.{{ else }}Not in enforce mode, so mail
            still flows, but enforcing this policy would stop senders from delivering to that MX.{{ end }}
          |||,
          runbook_url: '$(runbookURL)#smtpdomainmtastsfailing',
        },
      },
      {
        alert: 'SMTPDomainSPFFailing',
        comment:: |||
          The SPF record is missing or invalid (permerror everywhere), needs
          more than 10 DNS lookups (permerror too), authorises every host
          (+all, a warn verdict), or does not authorise a sending_ips entry.
        |||,
        expr: |||
          probe_domain_check_info{check="spf", result=~"fail|warn"} == 1
        |||,
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'SPF of {{ $labels.target }} {{ $labels.result }}s: {{ $labels.reason }}',
          description: |||
            The SPF check of {{ $labels.target }} (module {{ $labels.module }}) has returned {{ $labels.result }} for an hour
            (reason {{ $labels.reason }}).
            {{ if eq $labels.reason "spf_too_many_lookups" }}The record needs more than 10 DNS lookups (includes counted
            recursively): receivers treat it as permerror, as if it were broken.
            {{- else if eq $labels.reason "spf" }}A configured sending IP is not authorised by the record: its mail fails SPF.
            {{- else }}The record is missing, duplicated, invalid or authorises every host (+all).{{ end }}
          |||,
          runbook_url: '$(runbookURL)#smtpdomainspffailing',
        },
      },
      {
        alert: 'SMTPDomainDMARCMissing',
        expr: |||
          probe_domain_check_info{check="dmarc", result="fail"} == 1
        |||,
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: '{{ $labels.target }} has no usable DMARC record',
          description: |||
            _dmarc.{{ $labels.target }} (module {{ $labels.module }}) has had no valid DMARC record for an hour
            (reason {{ $labels.reason }}): none, several, or one that does not parse. Receivers apply no DMARC policy
            to mail from the domain, so anyone can send as it, and large mailbox providers file or refuse bulk mail without one.
          |||,
          runbook_url: '$(runbookURL)#smtpdomaindmarcmissing',
        },
      },
      {
        alert: 'SMTPDomainBlocklisted',
        comment:: |||
          An MX address or a sending_ips entry is listed in one of the
          module's dnsbl_zones. A refused query (127.255.255.x) is an error
          verdict, never this.
        |||,
        expr: |||
          probe_domain_check_info{check="dnsbl", result="fail"} == 1
        |||,
        'for': '30m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'An address of {{ $labels.target }} is on a blocklist',
          description: |||
            An MX address or sending IP of {{ $labels.target }} (module {{ $labels.module }}) has been listed on a
            blocklist of the module's dnsbl_zones for 30 minutes. Receivers that use the list refuse or junk its mail.
            The lists and their explanations: smtp_exporter probe --module={{ $labels.module }} {{ $labels.target }}.
          |||,
          runbook_url: '$(runbookURL)#smtpdomainblocklisted',
        },
      },
      {
        alert: 'SMTPDomainPTRMissing',
        expr: |||
          probe_domain_check_info{check="ptr", result="fail"} == 1
        |||,
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'Reverse DNS of an MX of {{ $labels.target }} is wrong: {{ $labels.reason }}',
          description: |||
            An MX address of {{ $labels.target }} (module {{ $labels.module }}) has had {{ if eq $labels.reason "ptr_missing" }}no
            PTR record{{ else }}a PTR record that does not resolve back to it or does not name the host its server greets
            as{{ end }} for an hour. Many receivers refuse mail from an address without forward-confirmed reverse DNS.
          |||,
          runbook_url: '$(runbookURL)#smtpdomainptrmissing',
        },
      },
      {
        alert: 'SMTPDomainCheckFailing',
        comment:: |||
          The checks without an alert of their own: DKIM keys of the
          configured selectors, and TLS-RPT.
        |||,
        expr: |||
          probe_domain_check_info{check=~"dkim|tls_rpt", result="fail"} == 1
        |||,
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: '{{ $labels.check }} check of {{ $labels.target }} fails: {{ $labels.reason }}',
          description: |||
            The {{ $labels.check }} check of {{ $labels.target }} (module {{ $labels.module }}) has failed for an hour
            with reason {{ $labels.reason }}. {{ if eq $labels.check "dkim" }}A configured selector's key is missing,
            unparseable, revoked or too short: signatures made with it fail, and so does DMARC where SPF is not aligned.
            {{- else }}The _smtp._tls record is missing or invalid: senders send no TLS reports, so failing TLS to the MX goes unreported.{{ end }}
          |||,
          runbook_url: '$(runbookURL)#smtpdomaincheckfailing',
        },
      },
      {
        alert: 'SMTPDomainCheckError',
        comment:: |||
          A check could not decide: its DNS lookups failed (SERVFAIL,
          timeout, refused) or were DNSSEC bogus. Senders see the same.
        |||,
        expr: |||
          probe_domain_check_info{result="error"} == 1
        |||,
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'The {{ $labels.check }} check of {{ $labels.target }} cannot decide: {{ $labels.reason }}',
          description: |||
            The {{ $labels.check }} check of {{ $labels.target }} (module {{ $labels.module }}) has ended in an error for an
            hour (reason {{ $labels.reason }}). {{ if eq $labels.reason "dnssec_bogus" }}The answers fail DNSSEC validation:
            validating resolvers, and so many senders, cannot resolve these records at all. Check the zone's signatures
            and DS records now.{{ else }}Its DNS lookups fail: check the domain's name servers, and the resolver the
            module asks (domain.dns_server).{{ end }}
          |||,
          runbook_url: '$(runbookURL)#smtpdomaincheckerror',
        },
      },
      {
        alert: 'SMTPDomainMXCertificateExpiresSoon',
        comment:: |||
          The earliest certificate any MX presented expires within 14 days.
        |||,
        expr: '(probe_domain_mx_ssl_earliest_cert_expiry - time()) / 86400 < 14',
        'for': '1h',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'An MX certificate of {{ $labels.target }} expires in {{ $value | printf "%.1f" }} days',
          description: |||
            The earliest-expiring certificate presented by an MX host of {{ $labels.target }} (module {{ $labels.module }})
            expires in {{ $value | printf "%.1f" }} days. Once expired, MTA-STS enforce and DANE-TA senders stop delivering
            to it. Renew it, and for DANE publish the new TLSA record before the new certificate goes live.
          |||,
          runbook_url: '$(runbookURL)#smtpdomainmxcertificateexpiressoon',
        },
      },
    ],
  },
];

{
  // subst replaces $(name) with _config.name.
  local subst(s) = std.foldl(
    function(acc, k) std.strReplace(acc, '$(' + k + ')', $._config[k]),
    [k for k in std.objectFields($._config) if std.isString($._config[k])],
    s,
  ),

  prometheusAlerts+:: {
    header:: header,
    groups+: [
      g { rules: [
        r {
          expr: subst(r.expr),
          annotations: std.mapWithKey(
            function(k, v) if k == 'description' then fold(subst(v)) else subst(v),
            r.annotations,
          ),
          descriptionLines:: subst(std.get(r.annotations, 'description', '')),
        }
        for r in g.rules
      ] }
      for g in groups
    ],
  },
}
