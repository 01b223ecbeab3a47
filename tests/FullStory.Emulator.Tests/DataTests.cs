using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FullStory.Emulator.Tests;

public class DataTests
{
    private static readonly string[] LegacyStandard =
    {
        "IndvId", "UserId", "SessionId", "PageId", "UserAppKey", "UserDisplayName", "UserEmail", "EventStart", "EventType", "EventSubType",
        "EventCustomName", "EventTargetText", "EventTargetSelectorTok", "EventModFrustrated", "EventModDead", "EventModError", "EventModSuspicious",
        "EventFirstInputDelay", "EventCumulativeLayoutShift", "PageName", "PageUrl", "PageRefererUrl", "PageIp", "PageLatLong", "PageAgent",
        "PageBrowser", "PageBrowserVersion", "PageDevice", "PagePlatform", "PageOperatingSystem", "PageDuration", "PageActiveDuration",
        "PageScreenWidth", "PageScreenHeight", "PageViewportWidth", "PageViewportHeight", "PageNumEvents", "PageNumDerivedEvents", "PageNumInfos",
        "PageNumWarnings", "PageNumErrors", "PageClusterId", "PageMaxScrollDepthPercent", "LoadDomContentTime", "LoadEventTime", "LoadFirstPaintTime",
        "LoadLargestPaintTime", "ReqUrl", "ReqMethod", "ReqStatus", "AppName", "AppPackageName", "AppDeviceModel", "AppDeviceVendor", "AppVersion",
        "AppOsVersion", "AppViewName", "EventMobileSourceFile",
    };

    private static readonly string[] SegmentOnly =
    {
        "UserCreated", "EventTargetSelector", "EventPageOffset", "EventSessionOffset", "EventVarErrorKind", "EventVarFields", "EventWebSourceFileUrl",
        "SessionStart", "PageStart", "PageUserAgent",
    };

    private static EmulatorDataset Dataset(int bundles = 3, int events = 2000, int seed = 1)
        => new(T.Options(bundles, events, seed));

    [Fact]
    public void Every_standard_field_occurs_and_legacy_names_only()
    {
        var ds = Dataset();
        var keys = ds.Bundles.SelectMany(b => ds.EventsOf(b.Id)).SelectMany(e => e.Select(p => p.Key)).ToHashSet();
        foreach (var f in LegacyStandard) Assert.Contains(f, keys);
        foreach (var f in SegmentOnly) Assert.DoesNotContain(f, keys);
    }

    [Fact]
    public void Segment_export_has_its_names_and_extra_fields()
    {
        var ds = Dataset();
        var events = ds.EventsBetween(ds.Bundles[0].Start, ds.Bundles[^1].Stop).ToList();
        Assert.Equal(6000, events.Count);
        var keys = events.SelectMany(e => e.Select(p => p.Key)).ToHashSet();
        foreach (var f in SegmentOnly) Assert.Contains(f, keys);
        Assert.DoesNotContain("PageAgent", keys);
        Assert.DoesNotContain("EventTargetSelectorTok", keys);
        // same events as the bundles, renamed: same EventStart sequence
        var legacy = ds.Bundles.SelectMany(b => ds.EventsOf(b.Id)).ToList();
        Assert.Equal(legacy.Select(e => (string)e["EventStart"]!), events.Select(e => (string)e["EventStart"]!));
        Assert.Equal(legacy.Select(e => (string?)e["PageAgent"]), events.Select(e => (string?)e["PageUserAgent"]));
    }

    [Fact]
    public void Fields_are_absent_when_they_do_not_apply_never_null()
    {
        var ds = Dataset();
        var events = ds.Bundles.SelectMany(b => ds.EventsOf(b.Id)).ToList();
        foreach (var e in events)
        {
            string type = (string)e["EventType"]!;
            Assert.All(e, p => Assert.NotNull(p.Value));
            Assert.Equal(type == "load", e.ContainsKey("LoadDomContentTime"));
            Assert.Equal(type == "request", e.ContainsKey("ReqUrl"));
            if (e.ContainsKey("EventCustomName")) Assert.Contains(type, new[] { "custom", "custom_error" });
            if (type == "custom") Assert.True(e.ContainsKey("EventCustomName"));
            if (e.ContainsKey("EventTargetSelectorTok")) Assert.Contains(type, new[] { "click", "change", "seen", "thrash" });
            Assert.Equal(e.ContainsKey("AppName"), !e.ContainsKey("PageUrl"));
            Assert.NotEqual(0L, (long)e["IndvId"]!);
        }
        var types = events.Select(e => (string)e["EventType"]!).ToHashSet();
        foreach (var t in new[] { "click", "change", "navigate", "load", "seen", "custom", "custom_error", "uservar", "abandon", "thrash", "request" })
            Assert.Contains(t, types);
        Assert.Contains(events, e => (string?)e["EventTargetText"] == "");
        Assert.Contains(events, e => (string?)e["UserEmail"] == "");
    }

    [Fact]
    public void Ids_users_sessions_pages_and_times_are_realistic()
    {
        var ds = Dataset(events: 1000);
        foreach (var b in ds.Bundles)
        {
            var events = ds.EventsOf(b.Id).ToList();
            Assert.Equal(1000, events.Count);
            DateTimeOffset prev = b.Start;
            foreach (var e in events)
            {
                foreach (var id in new[] { "IndvId", "UserId", "SessionId", "PageId" })
                    Assert.InRange((long)e[id]!, 4_000_000_000_000_000L, 7_000_000_000_000_000L);
                string s = (string)e["EventStart"]!;
                Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", s);
                var t = DateTimeOffset.Parse(s, CultureInfo.InvariantCulture);
                Assert.True(t >= prev, "EventStart must not decrease within a bundle");
                Assert.True(t >= b.Start && t < b.Stop);
                prev = t;
            }
            Assert.True(events.Select(e => (long)e["UserId"]!).Distinct().Count() >= 3);
            Assert.True(events.Select(e => (long)e["SessionId"]!).Distinct().Count() >= 5);
            Assert.True(events.Select(e => (long)e["PageId"]!).Distinct().Count() >= 20);
            Assert.Contains(events, e => ((string)e["EventStart"]!).EndsWith("0Z") == false);
            // a page is (UserId, SessionId, PageId): one user and session per page
            foreach (var page in events.GroupBy(e => (long)e["PageId"]!))
            {
                Assert.Single(page.Select(e => (long)e["UserId"]!).Distinct());
                Assert.Single(page.Select(e => (long)e["SessionId"]!).Distinct());
            }
        }
    }

    [Fact]
    public void Every_200_event_bundle_carries_several_hostile_values_of_each_kind()
    {
        var ds = Dataset(bundles: 5, events: 200, seed: 7);
        foreach (var b in ds.Bundles)
        {
            var events = ds.EventsOf(b.Id).ToList();
            int Count(Func<KeyValuePair<string, JsonNode?>, bool> f) => events.Sum(e => e.Count(f));
            static bool Str(JsonNode? n, Func<string, bool> f) => n is JsonValue v && v.TryGetValue<string>(out var s) && f(s);

            foreach (var prefix in new[] { "evt_", "user_", "page_" })
                foreach (var suffix in new[] { "_str", "_int", "_real", "_bool", "_date", "_strs", "_ints", "_reals", "_bools", "_dates" })
                    Assert.True(Count(p => p.Key.StartsWith(prefix) && p.Key.EndsWith(suffix)) >= 3, $"{prefix}*{suffix} in bundle {b.Id}");
            Assert.True(Count(p => p.Key.StartsWith("evt_") && p.Key.Contains('.')) >= 3, "dotted names");
            Assert.True(Count(p => p.Key.EndsWith("_real") && p.Value is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.ToJsonString().All(char.IsAsciiDigit)) >= 3, "_real with integer value");
            Assert.True(Count(p => p.Key.Any(char.IsUpper) && p.Key.Contains('_')) >= 3, "mixed-case names");
            Assert.True(Count(p => Str(p.Value, s => s.Length >= 4900)) >= 3, "long strings");
            Assert.True(Count(p => Str(p.Value, s => s.Contains('"'))) >= 3, "quotes");
            Assert.True(Count(p => Str(p.Value, s => s.Contains('\\'))) >= 3, "backslashes");
            Assert.True(Count(p => Str(p.Value, s => s.Contains('\n'))) >= 3, "newlines");
            Assert.True(Count(p => Str(p.Value, s => s.Any(ch => ch is >= 'À' and <= 'ÿ'))) >= 3, "accents");
            Assert.True(Count(p => Str(p.Value, s => s.Any(ch => ch is >= '\u4E00' and <= '\u9FFF'))) >= 3, "CJK");
            Assert.True(Count(p => Str(p.Value, s => s.Any(char.IsSurrogate))) >= 3, "non-BMP / emoji");
            Assert.True(Count(p => p.Key.Any(ch => ch > 127)) >= 3, "unicode names");
        }
    }

    [Fact]
    public async Task Body_holds_raw_utf8_not_escaped_unicode()
    {
        await using var em = await T.Start(T.Options(1, 200));
        using var c = T.Client(em);
        var body = await T.GetBundleBytes(c, em.Dataset.Bundles[0].Id);
        var text = System.Text.Encoding.UTF8.GetString(body);
        Assert.Contains("🎉", text);
        Assert.Contains("注文", text);
        Assert.Contains("\\\"", text);
        Assert.Contains("\\n", text);
        Assert.DoesNotContain("\\u00E9", text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Same_seed_same_bytes_different_seed_different_bytes()
    {
        await using var a = await T.Start(T.Options(seed: 42));
        await using var b = await T.Start(T.Options(seed: 42));
        await using var d = await T.Start(T.Options(seed: 43));
        using var ca = T.Client(a); using var cb = T.Client(b); using var cd = T.Client(d);
        var id = a.Dataset.Bundles[1].Id;
        Assert.Equal(id, d.Dataset.Bundles[1].Id);
        var rawA = await (await ca.GetAsync($"api/v1/export/get?id={id}")).Content.ReadAsByteArrayAsync();
        var rawB = await (await cb.GetAsync($"api/v1/export/get?id={id}")).Content.ReadAsByteArrayAsync();
        var rawD = await (await cd.GetAsync($"api/v1/export/get?id={id}")).Content.ReadAsByteArrayAsync();
        Assert.Equal(rawA, rawB); // compressed bytes too
        Assert.NotEqual(T.Gunzip(rawA), T.Gunzip(rawD));
        // and regenerating gives the same again (nothing cached, nothing stateful)
        Assert.Equal(rawA, await (await ca.GetAsync($"api/v1/export/get?id={id}")).Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public void EventsBetween_is_start_inclusive_end_exclusive()
    {
        var ds = Dataset(bundles: 2, events: 300);
        var all = ds.Bundles.SelectMany(b => ds.EventsOf(b.Id)).Select(e => DateTimeOffset.Parse((string)e["EventStart"]!, CultureInfo.InvariantCulture)).ToList();
        var start = all[37];
        var end = all[450];
        var expected = all.Count(t => t >= start && t < end);
        var got = ds.EventsBetween(start, end).Select(e => DateTimeOffset.Parse((string)e["EventStart"]!, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(expected, got.Count);
        Assert.Equal(start, got[0]);
        Assert.True(got[^1] < end);
        Assert.DoesNotContain(end, got);
        Assert.Empty(ds.EventsBetween(ds.Bundles[^1].Stop, ds.Bundles[^1].Stop.AddDays(1)));
    }
}
