"""The rendered leaderboard: grouping, ordering, direction arrows, spreads and reference marking."""

from ganbench.report.leaderboard import render_csv, render_markdown


def test_markdown_sorts_by_fid_marks_references_and_shows_spread(make_result):
    results = [make_result("a", fid=30.0, name="worse"), make_result("b", fid=3.0, name="better"),
               make_result("c", fid=0.5, kind="reference", name="real data (test split)"),
               make_result("d", fid=7.0, name="other", dataset="digits8")]
    md = render_markdown(results, title="T")
    assert md.startswith("# T")
    mnist = md[md.index("## mnist"):]
    order = [mnist.index(s) for s in ("*real data (test split)*", "**better**", "**worse**")]
    assert order == sorted(order)
    assert "fid ↓" in md and "is ↑" in md
    assert "3.00 ± 0.50" in md and "30.00 ± 0.50" in md
    assert md.index("## digits8") < md.index("## mnist")
    assert "extractor `mnist_cnn` (weights sha256 efefefefefef…)" in md


def test_csv_has_values_and_spreads(make_result):
    csv = render_csv([make_result("a", fid=30.0)])
    header = csv.splitlines()[0].split(",")
    assert {"model", "fid", "fid_std", "is", "is_std", "n"} <= set(header)


def test_training_seeds_are_aggregated_into_mean_and_std(make_result):
    from ganbench.report.leaderboard import aggregate_seeds

    runs = []
    for seed, fid in ((0, 10.0), (1, 12.0), (2, 14.0)):
        r = make_result(f"s{seed}", fid=fid)
        r.model.train = {"steps": 10, "seed": seed}
        runs.append(r)
    other = make_result("other", fid=5.0, name="lsgan")
    rows = aggregate_seeds(runs + [other])
    assert len(rows) == 2
    agg = next(r for r in rows if r.name == "dcgan")
    assert agg.seeds == 3 and agg.scores["fid"].value == 12.0 and agg.scores["fid"].std == 2.0
    assert "3 training seeds" in agg.scores["fid"].method
    md = render_markdown(runs + [other])
    assert "12.00 ± 2.00" in md and "3 sets" in md


def test_two_files_of_one_run_are_one_row_not_two_training_seeds(make_result):
    from ganbench.report.leaderboard import build_tables

    old, new = make_result("same", fid=10.0), make_result("same", fid=14.0)
    old.provenance.created_utc, new.provenance.created_utc = "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"
    for order in ([old, new], [new, old]):
        (table,) = build_tables(order)
        (row,) = table.rows
        assert row.seeds == 1 and row.run_ids == ["same"] and row.scores["fid"].value == 14.0  # the newest copy
