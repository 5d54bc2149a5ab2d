"""`make mutants`: each guarantee's test must fail when its mechanism is removed.

A curated list of mutations, each a text replacement in one source file that removes or breaks one
mechanism the README's Guarantees table relies on. Each is applied alone, the tests named for it run,
and the file is put back. A mutation the tests do not catch *survives*: the guarantee has no real test.
Exit 1 when any survives. Outside `make test` (about 3 minutes).

Written by hand rather than with mutmut/cosmic-ray: those generate thousands of operator mutations
over every file (hours on two cores, most in code no guarantee rests on); what we want is the short,
reviewed list of "remove this mechanism" mutations, each tied to the tests that claim to prove it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = "layers/core/leadimport"


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = [
    Mutant("the failing chunk's body is logged on a chunk error", "functions/worker/handler.py",
           '"attempt": attempts, "last_attempt": last_attempt, "error": error})',
           '"attempt": attempts, "last_attempt": last_attempt, "error": error, "body": record.body})',
           ("tests/integration/test_faults.py::test_a_chunk_that_fails_every_time_fails_its_import_with_a_sentence_and_lists_its_rows",)),
    Mutant("the split checkpoint is written before the batch is sent", f"{CORE}/services/split_upload.py",
           """                    self.queue.send(pending)
                    pending = []
                    status = import_repo.checkpoint(""",
           """                    sent, pending = pending, []
                    status = import_repo.checkpoint(""",
           ("tests/integration/test_splitter.py::test_a_splitter_retried_after_a_crash_resumes_with_identical_chunks",)),
    Mutant("undo also expires other imports' leads", f"{CORE}/store/leads.py",
           "WHERE company_id = :c AND import_id = CAST(:i AS uuid) AND status = 'live'",
           "WHERE company_id = :c AND (import_id = CAST(:i AS uuid) OR import_id IS NOT NULL) AND status = 'live'",
           ("tests/integration/test_lead_lifecycle.py::test_undo_puts_back_the_database_and_redis_as_they_were_before_the_import",
            "tests/integration/test_api.py::test_undo_expires_the_imports_leads_and_tokens_and_leaves_the_rest")),
    Mutant("the token check at completion skips the leads an import refreshed or moved", f"{CORE}/services/token_reconciliation.py",
           "for page in (own_live_lead_keys, changed_live_lead_keys):", "for page in (own_live_lead_keys,):",
           ("tests/integration/test_lead_lifecycle.py::test_the_check_at_completion_stamps_again_a_refreshed_leads_lost_tokens_and_leaves_an_undone_one_alone",)),
    Mutant("the claims of earlier chunks are not read", f"{CORE}/services/import_chunk.py",
           "phones if options.dry_run or every_claim else list(facts))",
           "[] if options.dry_run or every_claim else [])",
           ("tests/integration/test_import_chunk.py::test_a_new_phone_on_rows_of_two_chunks_is_a_duplicate_in_file_in_any_order_even_in_a_dry_run",
            "tests/integration/test_chunk_equivalence.py")),
    Mutant("a lead of a small statement is not checked against its contact (cached-plan branch)",
           "infra/db/migrations/0013_tenant_checks_cached_for_small_statements.sql",
           "contacts', n.contact_id) FROM changed n\n            WHERE NOT EXISTS",
           "contacts', n.contact_id) FROM changed n\n            WHERE false AND NOT EXISTS",
           ("tests/integration/test_tenant_keys.py::test_a_lead_cannot_reference_another_companys_parent_or_a_missing_one",)),
    Mutant("a lead of a large statement is not checked against its contact (planned-per-statement branch)",
           "infra/db/migrations/0013_tenant_checks_cached_for_small_statements.sql",
           "contacts', n.contact_id) FROM changed n\n                WHERE NOT EXISTS",
           "contacts', n.contact_id) FROM changed n\n                WHERE false AND NOT EXISTS",
           ("tests/integration/test_tenant_keys.py::test_a_statement_of_many_rows_is_checked_as_a_single_row_is",)),
    Mutant("a chunk whose claim meets an earlier chunk's is not planned again with every claim read",
           f"{CORE}/services/import_chunk.py",
           "return self._write_running(msg, imp, options, candidates, list(rejections), every_claim=True)",
           "return self._write_running(msg, imp, options, candidates, list(rejections), every_claim=False)",
           ("tests/integration/test_import_chunk.py::test_a_phone_whose_facts_vanish_between_chunks_is_still_a_duplicate_in_file",)),
    Mutant("a new lead does not look for another row's recorded claim of its phone", f"{CORE}/store/chunks.py",
           "WHERE x.import_id = CAST(:imp AS uuid) AND x.phone = t.phone) <> t.row_no)",
           "WHERE x.import_id = CAST(:imp AS uuid) AND x.phone = t.phone) <> t.row_no AND false)",
           ("tests/integration/test_import_chunk.py::test_a_phone_whose_facts_vanish_between_chunks_is_still_a_duplicate_in_file",)),
    Mutant("a phone held by an earlier chunk's lead is not found", f"{CORE}/store/chunks.py",
           "AND x.import_id IS NOT DISTINCT FROM CAST(:i AS uuid) LIMIT 1) l",
           "AND false LIMIT 1) l",
           ("tests/integration/test_import_chunk.py::test_duplicates_across_chunks_keep_the_first_row_whatever_the_order",
            "tests/integration/test_chunk_equivalence.py")),
    Mutant("a row that takes a phone over from a lead does not record its claim", f"{CORE}/services/import_chunk.py",
           "if row not in by_lead or p in claims}", "if row not in by_lead}",
           ("tests/integration/test_import_chunk.py::test_one_phone_on_three_rows_in_three_chunks_keeps_the_policys_row_whatever_the_order",)),
    Mutant("a deleted lead of an import leaves no claim", "infra/db/migrations/0014_lead_claims_kept.sql",
           "    IF OLD.import_id IS NOT NULL AND OLD.import_row IS NOT NULL THEN",
           "    IF false THEN",
           ("tests/integration/test_lean_write.py::test_a_phone_held_by_a_lead_that_another_writer_removes_or_hides_is_still_a_duplicate_in_file",)),
    Mutant("a new lead meeting a live one is not planned again", f"{CORE}/store/chunks.py",
           '("lead_import_phones_pkey", "leads_one_live_per_owner")', '("lead_import_phones_pkey",)',
           ("tests/integration/test_lean_write.py",)),
    Mutant("the token check stops at a page of rows without a live lead", f"{CORE}/store/leads.py",
           "return (following if last_row is not None and following < last_row else None,",
           "return (following if page else None,",
           ("tests/integration/test_lead_lifecycle.py::test_the_check_at_completion_reads_every_page_past_pages_without_a_live_lead",)),
    Mutant("the token check reads one page of an import's refreshed leads", f"{CORE}/store/leads.py",
           "return (int(last_id) if count == limit else None,", "return (None,",
           ("tests/integration/test_lead_lifecycle.py::test_the_check_at_completion_reads_every_page_past_pages_without_a_live_lead",)),
    Mutant("the token check stamps a lost key back without reading its lead again, live, under a lock", f"{CORE}/store/leads.py",
           "WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'live' AND (expires_at IS NULL OR expires_at > now())",
           "WHERE id = ANY(CAST(:ids AS bigint[]))",
           ("tests/integration/test_lead_lifecycle.py::test_the_check_at_completion_stamps_again_a_refreshed_leads_lost_tokens_and_leaves_an_undone_one_alone",)),
    Mutant("a chunk's size counts characters, not the UTF-8 bytes of its message", f"{CORE}/csv_io/chunker.py",
           "row_size = per_row + per_field * len(values) + _utf8_length(text)",
           "row_size = per_row + per_field * len(values) + len(text)",
           ("tests/unit/test_chunker.py",)),
    Mutant("a chunk's rows are budgeted without the message's header (a wide header outgrows SQS's 256 KiB)",
           f"{CORE}/services/split_upload.py",
           "    return min(max_bytes, MESSAGE_MAX_BYTES - frame)",
           "    return max_bytes",
           ("tests/unit/test_chunker.py::test_a_chunk_message_stays_within_the_sqs_limit_whatever_the_header",)),
    Mutant("a row too big for a chunk message goes out whole (SQS refuses the message, the split stops)",
           f"{CORE}/services/split_upload.py",
           "phone_column=mapped_phone_column(columns)), max_bytes, offset)",
           "phone_column=mapped_phone_column(columns)), 10**9, offset)",
           ("tests/integration/test_splitter.py::test_a_row_too_big_for_one_message_is_rejected_and_the_rows_around_it_go_out",)),
    Mutant("a header too long for a chunk message is not refused", f"{CORE}/services/split_upload.py",
           "    if frame > MAX_MESSAGE_FRAME_BYTES:",
           "    if False:",
           ("tests/integration/test_splitter.py::test_a_header_too_long_for_a_chunk_message_fails_the_import_with_a_sentence",)),
    Mutant("a chunk over its import's cap reads its rows before finding no slot", f"{CORE}/services/import_chunk.py",
           "        if cap and not self._slot_free(msg.import_id, cap):",
           "        if False and cap and not self._slot_free(msg.import_id, cap):",
           ("tests/integration/test_import_cap.py::test_a_chunk_over_the_cap_writes_nothing_and_a_raised_cap_lets_it_in",)),
    Mutant("a rejected drop stays in drop/ (copied, never deleted)", f"{CORE}/store/aws.py",
           """        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True""",
           """        return True""",
           ("tests/integration/test_splitter.py::test_a_drop_for_an_unknown_company_is_rejected_with_its_reason",
            "tests/integration/test_splitter.py::test_odd_drop_keys_are_rejected_to_their_own_prefix_without_a_crash")),
    Mutant("errors.csv leaves out the part of the file a cancelled import never read", f"{CORE}/services/imports_api.py",
           "        if (first_unread is not None and row[\"split_offset\"] is not None",
           "        if (first_unread is None and row[\"split_offset\"] is not None",
           ("tests/integration/test_api.py::test_a_cancel_during_the_split_lists_the_part_never_read_in_the_errors_csv",)),
    Mutant("a lead's schedule is not locked FOR KEY SHARE by its writer (small statements)",
           "infra/db/migrations/0013_tenant_checks_cached_for_small_statements.sql",
           """                     FOR KEY SHARE OF s)
        SELECT format('schedule %s is not one of the company''s schedules', n.id)""",
           """)
        SELECT format('schedule %s is not one of the company''s schedules', n.id)""",
           ("tests/integration/test_tenant_keys.py",)),
    Mutant("a lead's schedule is not locked FOR KEY SHARE by its writer (large statements)",
           "infra/db/migrations/0013_tenant_checks_cached_for_small_statements.sql",
           """                         FOR KEY SHARE OF s)
            SELECT format('schedule %s is not one of the company''s schedules', n.id)""",
           """)
            SELECT format('schedule %s is not one of the company''s schedules', n.id)""",
           ("tests/integration/test_tenant_keys.py",)),
    Mutant("a contact's delete does not wait for the importer holding its phone",
           "infra/db/migrations/0012_phone_lock_company_key.sql",
           "        PERFORM pg_advisory_xact_lock(phone_lock_company(OLD.company_id), hashtext(OLD.phone));\n", "",
           ("tests/integration/test_tenant_keys.py",)),
    Mutant("a chunk over its import's cap is written anyway", f"{CORE}/services/import_chunk.py",
           "            if cap and not sql.take_import_slot(conn, msg.import_id, cap):",
           "            if False and cap and not sql.take_import_slot(conn, msg.import_id, cap):",
           ("tests/integration/test_import_cap.py",)),
    Mutant("a capped chunk is dropped instead of put back in the queue", "functions/worker/handler.py",
           "        root.chunk_queue().send_later(record.body, random.randint(*THROTTLE_DELAY_SECONDS))  # noqa: S311",
           "        pass",
           ("tests/integration/test_import_cap.py",)),
    Mutant("a claim moved to a refreshing row forgets that it refreshed", f"{CORE}/store/chunks.py",
           'return "{" + ",".join("t" if r in refreshed_rows else "f" for r in rows) + "}"',
           'return "{" + ",".join("f" for r in rows) + "}"',
           ("tests/integration/test_chunk_equivalence.py",)),
    Mutant("errors.csv neutralizes only = and +", f"{CORE}/services/imports_api.py",
           'if value and value[0] in "=+-@\\t\\r":', 'if value and value[0] in "=+":',
           ("tests/unit/test_errors_csv.py",)),
    Mutant("the blacklist lookup ignores the company", f"{CORE}/store/chunks.py",
           "SELECT x.phone FROM blacklist x WHERE x.company_id = :c AND x.phone = p.phone",
           "SELECT x.phone FROM blacklist x WHERE x.phone = p.phone",
           ("tests/integration/test_import_chunk.py::test_another_companys_blacklist_does_not_reject_a_row",)),
    Mutant("the split lease is not released on a crash", f"{CORE}/services/split_upload.py",
           "            self._release(job)  # a retry of this event may resume at once",
           "            pass  # the lease stays held",
           ("tests/integration/test_splitter.py::test_a_splitter_retried_after_a_crash_resumes_with_identical_chunks",)),
    Mutant("the (import, chunk) done-marker lets a redelivery through", f"{CORE}/store/chunks.py",
           "VALUES (CAST(:i AS uuid), :n, :f, :c, 'processed') ON CONFLICT DO NOTHING RETURNING 1)",
           "VALUES (CAST(:i AS uuid), :n, :f, :c, 'processed') ON CONFLICT (import_id, chunk_no) DO UPDATE SET"
           " row_count = EXCLUDED.row_count RETURNING 1)",
           ("tests/integration/test_import_chunk.py::test_a_redelivered_chunk_changes_nothing",)),
    Mutant("a chunk does not re-read its import's status under its lock", f"{CORE}/services/import_chunk.py",
           "            if status_now in (ImportStatus.CANCELLED, ImportStatus.FAILED):\n                raise",
           "            if False:\n                raise",
           ("tests/integration/test_import_chunk.py::test_a_chunk_that_read_its_import_before_a_cancel_writes_nothing_and_counts_its_rows_unprocessed",)),
    Mutant("status changes ignore the lifecycle table", f"{CORE}/imports/repository.py",
           "WHERE id = CAST(:id AS uuid) AND status = ANY(CAST(:sources AS text[])){where_sql}",
           "WHERE id = CAST(:id AS uuid) AND (status = ANY(CAST(:sources AS text[])) OR true){where_sql}",
           ("tests/integration/test_import_lifecycle.py",)),
    Mutant("the database's transition trigger lets every change through", "infra/db/migrations/0004_import_transitions.sql",
           "    IF NOT EXISTS (SELECT 1 FROM lead_import_transitions",
           "    IF false AND NOT EXISTS (SELECT 1 FROM lead_import_transitions",
           ("tests/integration/test_import_lifecycle.py::test_every_status_change_is_allowed_or_refused_by_the_database_as_the_table_says",)),
    Mutant("a dropped file's options skip the ownership checks", f"{CORE}/services/split_upload.py",
           "            check_import_options(self.db, company_id,", "            (lambda *a: None)(self.db, company_id,",
           ("tests/integration/test_splitter.py::test_a_dropped_file_with_options_the_api_refuses_fails_with_the_apis_sentence_and_writes_nothing",)),
    Mutant("a later-processed chunk's claim always wins", f"{CORE}/rules/chunk_plan.py",
           "            if keeps_phone(held, c.row_no, policy):", "            if True:",
           ("tests/unit/test_chunk_plan.py",)),
    Mutant("the blacklist is checked after in-file duplicates", f"{CORE}/rules/chunk_plan.py",
           "    for c in _one_row_per_phone(kept, policy, plan.rejections):",
           "    for c in _one_row_per_phone(list(candidates), policy, plan.rejections):",
           ("tests/unit/test_chunk_plan.py::test_blacklist_comes_before_in_file_duplicates",)),
    Mutant("a chunk failing on its last attempt is not recorded", "functions/worker/handler.py",
           "                root.chunk_importer().record_failed_chunk(message, error, attempts)",
           "                pass",
           ("tests/integration/test_faults.py::test_a_chunk_that_fails_every_time_fails_its_import_with_a_sentence_and_lists_its_rows",)),
    Mutant("a chunk failing on its last attempt does not fail its import in the same transaction",
           f"{CORE}/services/import_chunk.py",
           "            import_repo.fail_in(conn, msg.import_id, (", "            (lambda *a: None)(conn, msg.import_id, (",
           ("tests/integration/test_faults.py::test_a_last_chunk_that_fails_every_time_fails_its_import_instead_of_completing_it",)),
    Mutant("a takeover ignores that the held row refreshed a lead", f"{CORE}/services/import_chunk.py",
           "{t.held_row for t in plan.takeovers if claims[t.phone].refreshed}", "set()",
           ("tests/integration/test_import_chunk.py::test_a_row_that_refreshed_a_lead_and_loses_its_phone_to_an_earlier_row_moves_the_updated_counter",)),
    Mutant("tokens Redis lost are not stamped again at completion", f"{CORE}/services/import_chunk.py",
           "            self._reconcile_tokens(msg.import_id)", "            pass",
           ("tests/integration/test_faults.py::test_redis_stopped_and_restarted",)),
    Mutant("an older split attempt's checkpoint is not fenced", f"{CORE}/imports/repository.py",
           "             AND split_attempt = :a\n           RETURNING status",
           "             AND (split_attempt = :a OR true)\n           RETURNING status",
           ("tests/integration/test_import_lifecycle.py::test_the_split_lease_is_taken_only_from_queued_or_an_expired_splitting",)),
    Mutant("an opted-out contact's new lead is enrolled", f"{CORE}/store/chunks.py",
           "WHERE created.import_row <> ALL(CAST(:no_enroll AS int[])))", "WHERE true)",
           ("tests/integration/test_lead_lifecycle.py::test_opt_out_applies_to_every_valid_row_and_an_opted_out_contact_is_never_enrolled",)),
    Mutant("a lead moved for a contact that takes no calls is enrolled", f"{CORE}/store/chunks.py",
           "    to_enroll = [r[0] for r in moved if r[0] not in without_run]", "    to_enroll = [r[0] for r in moved]",
           ("tests/integration/test_lead_lifecycle.py::test_a_lead_moved_for_a_contact_that_takes_no_calls_gets_no_run_in_its_new_schedule",)),
    Mutant("a lead past its expiry counts as live", f"{CORE}/store/chunks.py",
           "live_lead_id=None if r[11] else r[10], stale_lead_id=r[10] if r[11] else None)",
           "live_lead_id=r[10], stale_lead_id=None)",
           ("tests/integration/test_lead_lifecycle.py::test_a_lead_past_its_expiry_is_not_live_a_reimport_creates_and_the_sweep_expires",)),
    Mutant("undo does not restore the contact flags", f"{CORE}/store/leads.py",
           "WHERE f.import_id = CAST(:i AS uuid) AND ct.id = f.contact_id AND ct.company_id = :c",
           "WHERE f.import_id = CAST(:i AS uuid) AND ct.id = f.contact_id AND ct.company_id = :c AND false",
           ("tests/integration/test_lead_lifecycle.py::test_undo_puts_back_the_database_and_redis_as_they_were_before_the_import",)),
    Mutant("the importer keeps the error CSV's ' prefix", f"{CORE}/rules/pipeline.py",
           "        undo_formula_guard(values)\n", "\n",
           ("tests/integration/test_lead_lifecycle.py::test_the_error_csv_goes_back_in_as_it_is_after_fixing_two_rows",)),
    Mutant("the error CSV's bookkeeping columns become tokens", f"{CORE}/csv_io/mapping.py",
           "    for i in range(len(source) - bookkeeping_columns(source), len(source)):",
           "    for i in range(len(source), len(source)):",
           ("tests/integration/test_lead_lifecycle.py::test_the_error_csv_goes_back_in_as_it_is_after_fixing_two_rows",)),
    # The file round trip (#18): a quote left open costs its own row only; NULs and long values are forgiven with
    # warnings that are kept per row.
    Mutant("a record across lines is never checked for a quote left open", f"{CORE}/csv_io/reader.py",
           "if spans > 1 or flags & 8:", "if False:",
           ("tests/unit/test_csv_reader.py::test_one_stray_quote_costs_one_row_not_the_rest_of_the_file",
            "tests/integration/test_file_round_trip.py::test_one_stray_quote_costs_its_own_row_and_every_other_row_goes_in")),
    Mutant("the lines a quote left open swallows are not recognized as rows", f"{CORE}/csv_io/reader.py",
           "    return _PHONE_LIKE.fullmatch(value) is not None and", "    return False and",
           ("tests/unit/test_csv_reader.py::test_an_open_quote_closed_by_a_later_inch_mark_merges_nothing",
            "tests/integration/test_file_round_trip.py::test_an_open_quote_closed_by_a_later_inch_mark_merges_no_rows")),
    Mutant("reading goes on after the swallowed lines, not after the opening line", f"{CORE}/csv_io/reader.py",
           '                                reopen = last + text.index("\\n") + 1 if "\\n" in text else end',
           "                                reopen = end",
           ("tests/unit/test_csv_reader.py::test_every_row_of_a_damaged_export_gets_exactly_one_outcome",)),
    Mutant("one NUL byte makes the file binary again", f"{CORE}/csv_io/reader.py",
           "_BINARY_SHARE = 0.05", "_BINARY_SHARE = 0.0",
           ("tests/unit/test_csv_reader.py::test_binary_is_decided_by_proportion_not_by_one_byte",
            "tests/integration/test_file_round_trip.py::test_nuls_and_a_long_note_are_forgiven_with_warnings_listed_per_row")),
    Mutant("a long value in any column rejects the row", f"{CORE}/csv_io/reader.py",
           "            if index == phone:", "            if True:",
           ("tests/integration/test_file_round_trip.py::test_nuls_and_a_long_note_are_forgiven_with_warnings_listed_per_row",)),
    Mutant("the worker drops what the reader fixed", f"{CORE}/rules/pipeline.py",
           "            warnings[:0] = list(dict.fromkeys(n.code for n in notes))", "            pass",
           ("tests/integration/test_file_round_trip.py::test_nuls_and_a_long_note_are_forgiven_with_warnings_listed_per_row",)),
    Mutant("row warnings are not written", f"{CORE}/services/import_chunk.py",
           "            insert_row_warnings(conn, msg.import_id, [*plan.create, *(c for c, _ in plan.update)])\n", "",
           ("tests/integration/test_file_round_trip.py::test_rule_warnings_name_the_files_column",)),
    # The preview (#19): its totals are the chunk plan's over the file; a cancel before the file is read is honest
    Mutant("the preview's totals leave out the chunk plan (blacklist, duplicates, scrub, existing leads)",
           f"{CORE}/services/preview.py",
           "    _apply_plan(db, source, options, candidates, outcomes)\n", "",
           ("tests/integration/test_preview.py::test_the_preview_totals_cover_the_whole_file_with_the_existing_lead_outcome",)),
    Mutant("an upload whose event reaches an import cancelled before it is not recorded", f"{CORE}/services/split_upload.py",
           'and import_repo.attach_upload_of_ended(self.db, found["id"], info.version, info.size)):', "and False):",
           ("tests/integration/test_api.py::test_a_cancel_before_the_upload_is_read_says_the_file_was_never_read_and_lists_it",)),
    Mutant("a stopped import's rows read are called the file's rows", f"{CORE}/imports/resource.py",
           '    if row["total_rows"] is not None and unread_from_row(row) is None:',
           '    if row["total_rows"] is not None:',
           ("tests/integration/test_api.py::test_a_cancel_mid_split_estimates_the_files_rows_instead_of_calling_the_rows_read_the_file",)),
    Mutant("an API answer that breaks its model is not caught", f"{CORE}/imports/resource.py",
           "    progress: float = Field(ge=0, le=1, description=(", "    progress: float = Field(ge=0, le=1000, description=(",
           ("tests/integration/test_api.py::test_openapi_document_matches_the_routes",)),
]


def run(mutant: Mutant) -> tuple[bool, str, float]:
    """(caught, by which output line, seconds)."""
    path = ROOT / mutant.path
    original = path.read_text(encoding="utf-8")
    if original.count(mutant.old) != 1:
        raise SystemExit(f"mutation {mutant.name!r}: its text is not found exactly once in {mutant.path}; "
                         "the code changed, update the mutation")
    t0 = time.monotonic()
    try:
        path.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                 "-n", "0", *mutant.tests], cwd=ROOT, capture_output=True, text=True, timeout=900)
    finally:
        path.write_text(original, encoding="utf-8")
    failed = [line for line in result.stdout.splitlines()
              if line.startswith("FAILED") or (line.startswith("ERROR ") and "tests/" in line)]
    return result.returncode != 0, (failed[0] if failed else result.stdout.strip().splitlines()[-1]), \
        time.monotonic() - t0


def main(argv: list[str]) -> int:
    """`python infra/mutants.py [WORD ...]`: all mutations, or those whose name contains one of the words."""
    chosen = [m for m in MUTANTS if not argv or any(w in m.name for w in argv)]
    survivors = []
    print(f"{len(chosen)} mutations, each must be caught by its tests\n")
    for i, mutant in enumerate(chosen, start=1):
        caught, by, seconds = run(mutant)
        print(f"{i:>2}. {'caught  ' if caught else 'SURVIVED'} {mutant.name} ({seconds:.0f} s)\n    {by}")
        if not caught:
            survivors.append(mutant.name)
    print(f"\n{len(chosen) - len(survivors)} caught, {len(survivors)} survived")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
