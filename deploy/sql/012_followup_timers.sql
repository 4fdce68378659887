-- Issue 13 (milestones): follow-up timers of each case in its projection, for the monthly
-- dispatch and the lists. Written by record_case_events from CaseProjection.followup; NULL for
-- cases whose run predates the timers (they adopt them at their next continue-as-new).
ALTER TABLE case_projection
    ADD COLUMN report_due_date     date,         -- the awaited monthly report's due date (may be past: overdue)
    ADD COLUMN report_period       text,         -- YYYY-MM of the awaited report (NULL: not reporting now)
    ADD COLUMN report_last_period  text,         -- YYYY-MM covered by the latest report
    ADD COLUMN report_last_at      timestamptz,  -- when the latest report was submitted
    ADD COLUMN measures_open       int,          -- measures not yet done with evidence
    ADD COLUMN milestone_next_due  date,         -- earliest due date of a timed open milestone
    ADD COLUMN milestones_overdue  int;          -- timed open milestones already escalated

CREATE INDEX case_projection_report_due_idx ON case_projection (report_due_date)
    WHERE report_due_date IS NOT NULL;

-- Whether this month's (Asia/Shanghai) report is in, per case under the monthly report.
CREATE VIEW case_report_status AS
SELECT case_no, responsible_units, stage, report_period, report_due_date, report_last_period,
       report_last_at,
       coalesce(report_last_period >= to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM'), false)
           AS this_month_in,
       report_due_date < (now() AT TIME ZONE 'Asia/Shanghai')::date AS report_overdue
FROM case_projection
WHERE report_period IS NOT NULL;
