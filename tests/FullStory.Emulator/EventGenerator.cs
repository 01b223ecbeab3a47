using System.Text.Json;

namespace FullStory.Emulator;

/// <summary>Which API's field names to use.</summary>
internal enum FieldNaming
{
    /// <summary>Legacy bundle names: PageAgent, EventTargetSelectorTok.</summary>
    Legacy,
    /// <summary>Segment export names: PageUserAgent, EventTargetSelector, plus its extra fields.</summary>
    SegmentExport,
}

/// <summary>Where a generated bundle sits: all an event needs, with its index, to be regenerated.</summary>
internal readonly record struct BundleShape(int Index, long StartMs, long PeriodMs, long EventCount);

/// <summary>Writes properties through an optional field filter (segment export <c>fields</c>).</summary>
internal sealed class Emitter
{
    public Utf8JsonWriter W = null!;
    public Func<string, bool>? Filter;

    private bool Ok(Prop p) => Filter is null || Filter(p.Name);
    public void Str(Prop p, JsonEncodedText v) { if (Ok(p)) W.WriteString(p.Enc, v); }
    public void Str(Prop p, string v) { if (Ok(p)) W.WriteString(p.Enc, v); }
    public void Str(Prop p, ReadOnlySpan<byte> utf8) { if (Ok(p)) W.WriteString(p.Enc, utf8); }
    public void Int(Prop p, long v) { if (Ok(p)) W.WriteNumber(p.Enc, v); }
    public void Real(Prop p, double v) { if (Ok(p)) W.WriteNumber(p.Enc, v); }
    public void Bool(Prop p, bool v) { if (Ok(p)) W.WriteBoolean(p.Enc, v); }
    public void Ts(Prop p, long unixMs)
    {
        if (!Ok(p)) return;
        Span<byte> b = stackalloc byte[24];
        Timestamps.Format(unixMs, b);
        W.WriteString(p.Enc, b);
    }
    public void StrArray(Prop p, ReadOnlySpan<JsonEncodedText> v)
    {
        if (!Ok(p)) return;
        W.WriteStartArray(p.Enc);
        foreach (var s in v) W.WriteStringValue(s);
        W.WriteEndArray();
    }
    public void IntArray(Prop p, ReadOnlySpan<long> v)
    {
        if (!Ok(p)) return;
        W.WriteStartArray(p.Enc);
        foreach (var s in v) W.WriteNumberValue(s);
        W.WriteEndArray();
    }
    public void RealArray(Prop p, ReadOnlySpan<double> v)
    {
        if (!Ok(p)) return;
        W.WriteStartArray(p.Enc);
        foreach (var s in v) W.WriteNumberValue(s);
        W.WriteEndArray();
    }
    public void BoolArray(Prop p, ReadOnlySpan<bool> v)
    {
        if (!Ok(p)) return;
        W.WriteStartArray(p.Enc);
        foreach (var s in v) W.WriteBooleanValue(s);
        W.WriteEndArray();
    }
    public void TsArray(Prop p, ReadOnlySpan<long> v)
    {
        if (!Ok(p)) return;
        W.WriteStartArray(p.Enc);
        Span<byte> b = stackalloc byte[24];
        foreach (var s in v) { Timestamps.Format(s, b); W.WriteStringValue(b); }
        W.WriteEndArray();
    }
}

/// <summary>
/// Generates events deterministically from (seed, bundle index, event index): any event can be regenerated
/// without state, so a bundle of any size is streamed and never held in memory.
/// Layout: pages of 20 events, sessions of 5 pages, users from a pool of 60 per seed.
/// </summary>
internal sealed class EventGenerator
{
    public const int PageLen = 20;
    public const int PagesPerSession = 5;
    public const int SessionLen = PageLen * PagesPerSession;
    public const int UserPool = 60;
    /// <summary>Every event whose index is ≡ 12 (mod 25) is a custom event carrying hostile values.</summary>
    public const int HostileEvery = 25;
    public const int HostileAt = 12;

    private readonly ulong _seed;

    public EventGenerator(int seed) { _seed = Mix.M((ulong)(uint)seed ^ 0xF5F5_0000_0000UL); }

    // ---------------------------------------------------------------- time
    /// <summary>
    /// Milliseconds after the bundle start. Sessions (100 events) get equal slots of the period; a session's events are
    /// about 2.5 s apart inside its slot. Non-decreasing in i and always inside [0, period).
    /// </summary>
    public long OffsetMs(in BundleShape b, long i)
    {
        long n = b.EventCount;
        long s = i / SessionLen, j = i % SessionLen;
        long sessFirst = s * SessionLen, sessLen = Math.Min(SessionLen, n - sessFirst);
        long slotStart = (long)((Int128)b.PeriodMs * sessFirst / n);
        long slotEnd = (long)((Int128)b.PeriodMs * (sessFirst + sessLen) / n);
        long slot = slotEnd - slotStart;
        long d = Math.Min(slot * 9 / 10, sessLen * 2500);
        ulong us = Mix.H(_seed, (ulong)b.Index, (ulong)s, 0x534C4F54) >> 32;
        long shift = (long)((Int128)(slot - d) * us >> 32);
        ulong u = Mix.H(_seed, (ulong)b.Index, (ulong)i, 0x54494D45) >> 32;
        long within = (long)((Int128)d * (((Int128)j << 32) + u) / ((Int128)sessLen << 32));
        return slotStart + shift + within;
    }

    public long EventStartMs(in BundleShape b, long i) => b.StartMs + OffsetMs(b, i);

    /// <summary>Smallest event index whose EventStart is at or after <paramref name="unixMs"/> (EventCount if none).</summary>
    public long FirstIndexAtOrAfter(in BundleShape b, long unixMs)
    {
        long lo = 0, hi = b.EventCount;
        while (lo < hi)
        {
            long mid = lo + (hi - lo) / 2;
            if (EventStartMs(b, mid) >= unixMs) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    // ---------------------------------------------------------------- ids
    private static long Id(ulong h) => 4_503_599_627_370_496L + (long)(h % 2_000_000_000_000_000UL);

    public long UserIdOf(int userIdx) => Id(Mix.H(_seed, (ulong)userIdx, 0x55534552));

    // ---------------------------------------------------------------- the event
    public void Write(Emitter e, in BundleShape b, long i, FieldNaming naming)
    {
        bool seg = naming == FieldNaming.SegmentExport;
        var w = e.W;
        long n = b.EventCount;
        long page = i / PageLen, pos = i % PageLen, sess = i / SessionLen;
        long pageFirst = page * PageLen, pageLast = Math.Min(pageFirst + PageLen, n) - 1;
        long sessFirst = sess * SessionLen;
        long t = EventStartMs(b, i);
        long pageStart = EventStartMs(b, pageFirst);
        long sessStart = EventStartMs(b, sessFirst);

        int userIdx = (int)(Mix.H(_seed, (ulong)b.Index, (ulong)sess, 0x5553) % UserPool);
        var ur = new Rng(Mix.H(_seed, (ulong)userIdx, 0x55534552));
        long userId = Id(ur.Next());
        long indvId = userIdx % 7 == 3 ? UserIdOf(userIdx - 1) : userId;
        var profile = Tables.Profiles[userIdx % Tables.Profiles.Length];
        bool identified = userIdx % 5 > 1;
        var person = Tables.People[(int)(ur.Next() % (ulong)Tables.People.Length)];
        long userCreated = 1_559_347_200_000L + ur.Long(400L * 86_400_000L); // 2019-06-01 + up to 400 days

        var pr = new Rng(Mix.H(_seed, (ulong)b.Index, (ulong)page, 0x50414745));
        long pageId = Id(pr.Next());
        long sessionId = Id(Mix.H(_seed, (ulong)b.Index, (ulong)sess, 0x53455353));
        var site = Tables.Pages[pr.Int(Tables.Pages.Length)];
        int referer = pr.Int(Tables.Referers.Length);
        bool ipEmpty = pr.Chance(0.3);
        int ip1 = pr.Range(1, 223), ip2 = pr.Int(256), ip3 = pr.Int(256), ip4 = pr.Range(1, 255);
        var latLong = Tables.LatLongs[pr.Int(Tables.LatLongs.Length)];
        long pageDuration = EventStartMs(b, pageLast) - pageStart + pr.Range(500, 30_000);
        long pageActive = (long)(pageDuration * (0.3 + 0.65 * pr.Double()));
        int clusterId = pr.Range(1, 1000);
        int numInfos = pr.Int(4), numWarnings = pr.Int(3), numErrors = pr.Chance(0.2) ? pr.Range(1, 5) : 0;
        int derived = pr.Int(8), scroll = pr.Int(101);
        bool pageVars = pr.Chance(0.35);
        int pageVarPick = pr.Int(1000);

        var er = new Rng(Mix.H(_seed, (ulong)b.Index, (ulong)i, 0x45564E54));
        bool hostile = i % HostileEvery == HostileAt;
        string type;
        if (pos == 0) type = "navigate";
        else if (pos == 1) type = "load";
        else if (hostile) type = "custom";
        else if (pos == 2 && page % PagesPerSession == 0 && identified) type = "uservar";
        else if (pos == PageLen - 1 && er.Chance(0.3)) type = "abandon";
        else type = Tables.PickType(ref er);

        // --- ids and time
        e.Int(P.IndvId, indvId);
        e.Int(P.UserId, userId);
        e.Int(P.SessionId, sessionId);
        e.Int(P.PageId, pageId);
        if (seg) e.Ts(P.UserCreated, userCreated);
        e.Ts(P.EventStart, t);
        e.Str(P.EventType, Tables.TypeText(type));

        // --- event specifics
        Tables.CustomTemplate? tpl = null;
        switch (type)
        {
            case "click":
            case "change":
            case "seen":
            case "thrash":
                {
                    var el = Tables.Elements[er.Int(Tables.Elements.Length)];
                    if (type == "thrash") e.Str(P.EventSubType, Tables.Thrash);
                    JsonEncodedText text = er.Chance(0.25) ? Tables.Empty
                        : er.Chance(0.04) ? Tables.Hostile[er.Int(Tables.Hostile.Length)]
                        : type == "change" ? Tables.ChangeValues[er.Int(Tables.ChangeValues.Length)] : el.Text;
                    e.Str(P.EventTargetText, text);
                    if (seg) e.Str(P.EventTargetSelector, el.Selector); else e.Str(P.EventTargetSelectorTok, el.SelectorTok);
                    if (seg) { e.Int(P.EventPageOffset, t - pageStart); e.Int(P.EventSessionOffset, t - sessStart); }
                    if (type == "thrash" || (type == "click" && er.Chance(0.03))) e.Int(P.EventModFrustrated, 1);
                    if (type == "click" && er.Chance(0.12)) e.Int(P.EventModDead, 1);
                    if (type == "click" && er.Chance(0.05)) e.Int(P.EventModError, er.Range(1, 3));
                    if (type == "click" && er.Chance(0.02)) e.Int(P.EventModSuspicious, 1);
                    if (type == "click" && pos < 6 && er.Chance(0.3)) e.Int(P.EventFirstInputDelay, er.Range(1, 400));
                    break;
                }
            case "custom":
            case "custom_error":
                {
                    tpl = hostile ? null : Tables.Templates[er.Int(Tables.Templates.Length)];
                    bool named = type == "custom" || er.Chance(0.6);
                    if (named) e.Str(P.EventCustomName, hostile ? Tables.HostileNames[(int)(i / HostileEvery % Tables.HostileNames.Length)] : tpl!.Name);
                    if (seg) { e.Int(P.EventPageOffset, t - pageStart); e.Int(P.EventSessionOffset, t - sessStart); }
                    if (type == "custom_error")
                    {
                        e.Int(P.EventModError, 1);
                        if (seg) e.Str(P.EventVarErrorKind, Tables.ErrorKinds[er.Int(Tables.ErrorKinds.Length)]);
                        if (!er.Chance(0.5)) tpl = null;
                    }
                    if (seg) e.Str(P.EventVarFields, hostile ? Tables.HostileVarFields : tpl?.VarFields ?? Tables.EmptyObject);
                    if (seg && type == "custom_error" && !profile.IsApp) e.Str(P.EventWebSourceFileUrl, Tables.SourceFiles[er.Int(Tables.SourceFiles.Length)]);
                    break;
                }
            case "request":
                if (seg) { e.Int(P.EventPageOffset, t - pageStart); e.Int(P.EventSessionOffset, t - sessStart); }
                break;
            default:
                if (seg) { e.Int(P.EventPageOffset, t - pageStart); e.Int(P.EventSessionOffset, t - sessStart); }
                break;
        }
        if (type is "load" or "abandon" && er.Chance(0.5)) e.Real(P.EventCumulativeLayoutShift, Math.Round(er.Double() * 0.5, 4));

        // --- session / page
        if (seg) { e.Ts(P.SessionStart, sessStart); e.Ts(P.PageStart, pageStart); }
        e.Int(P.PageDuration, pageDuration);
        e.Int(P.PageActiveDuration, pageActive);
        e.Str(P.PageName, profile.IsApp ? site.ViewName : site.Name);
        if (!profile.IsApp)
        {
            e.Str(P.PageUrl, site.Url);
            e.Str(P.PageRefererUrl, Tables.Referers[referer]);
        }
        if (ipEmpty) e.Str(P.PageIp, Tables.Empty);
        else
        {
            Span<byte> ipb = stackalloc byte[16];
            System.Text.Unicode.Utf8.TryWrite(ipb, $"{ip1}.{ip2}.{ip3}.{ip4}", out int ipn);
            e.Str(P.PageIp, ipb[..ipn]);
        }
        e.Str(seg ? P.PageUserAgent : P.PageAgent, profile.Agent);
        e.Str(P.PageBrowser, profile.Browser);
        if (!profile.IsApp) e.Str(P.PageBrowserVersion, profile.BrowserVersion);
        e.Str(P.PageDevice, profile.Device);
        e.Str(P.PagePlatform, profile.Platform);
        e.Str(P.PageOperatingSystem, profile.Os);
        e.Int(P.PageScreenWidth, profile.ScreenW);
        e.Int(P.PageScreenHeight, profile.ScreenH);
        e.Int(P.PageViewportWidth, profile.ViewW);
        e.Int(P.PageViewportHeight, profile.ViewH);
        e.Int(P.PageNumEvents, pageLast - pageFirst + 1);
        e.Int(P.PageNumDerivedEvents, derived);
        e.Int(P.PageNumInfos, numInfos);
        e.Int(P.PageNumWarnings, numWarnings);
        e.Int(P.PageNumErrors, numErrors);
        e.Int(P.PageClusterId, clusterId);
        e.Int(P.PageMaxScrollDepthPercent, scroll);

        if (type == "load")
        {
            int dom = er.Range(200, 4000);
            e.Int(P.LoadDomContentTime, dom);
            e.Int(P.LoadEventTime, dom + er.Range(1, 2000));
            e.Int(P.LoadFirstPaintTime, dom + er.Range(-150, 400));
            if (er.Chance(0.7)) e.Int(P.LoadLargestPaintTime, dom + er.Range(100, 3000));
        }
        else if (type == "request")
        {
            var rq = Tables.Requests[er.Int(Tables.Requests.Length)];
            e.Str(P.ReqUrl, rq.Url);
            e.Str(P.ReqMethod, rq.Method);
            e.Int(P.ReqStatus, er.Chance(0.1) ? Tables.ErrorStatuses[er.Int(Tables.ErrorStatuses.Length)] : rq.Status);
        }

        if (profile.IsApp)
        {
            e.Str(P.AppName, Tables.AppName);
            e.Str(P.AppPackageName, Tables.AppPackage);
            e.Str(P.AppDeviceModel, profile.DeviceModel);
            e.Str(P.AppDeviceVendor, profile.DeviceVendor);
            e.Str(P.AppVersion, Tables.AppVersion);
            e.Str(P.AppOsVersion, profile.BrowserVersion);
            e.Str(P.AppViewName, site.ViewName);
            if (type is "click" or "custom_error") e.Str(P.EventMobileSourceFile, Tables.MobileSourceFiles[er.Int(Tables.MobileSourceFiles.Length)]);
        }

        // --- user
        e.Str(P.UserAppKey, identified ? person.AppKey : Tables.Empty);
        e.Str(P.UserDisplayName, identified ? person.Name : Tables.Empty);
        e.Str(P.UserEmail, identified && person.HasEmail ? person.Email : Tables.Empty);
        e.Str(P.PageLatLong, latLong);

        // --- custom vars
        tpl?.Write(e, ref er);
        if (type == "uservar") Tables.WriteUserVars(e, ref er, person, userCreated);
        if (hostile) Tables.WriteHostile(e, ref er, i, t);
        if (pageVars) Tables.WritePageVars(e, pageVarPick);
    }
}
