using System.Text;
using System.Text.Json;

namespace FullStory.Emulator;

/// <summary>Standard field names.</summary>
internal static class P
{
    public static readonly Prop IndvId = new("IndvId"), UserId = new("UserId"), SessionId = new("SessionId"), PageId = new("PageId");
    public static readonly Prop UserCreated = new("UserCreated"), UserAppKey = new("UserAppKey"), UserDisplayName = new("UserDisplayName"), UserEmail = new("UserEmail");
    public static readonly Prop EventStart = new("EventStart"), EventType = new("EventType"), EventSubType = new("EventSubType"), EventCustomName = new("EventCustomName");
    public static readonly Prop EventTargetText = new("EventTargetText"), EventTargetSelectorTok = new("EventTargetSelectorTok"), EventTargetSelector = new("EventTargetSelector");
    public static readonly Prop EventPageOffset = new("EventPageOffset"), EventSessionOffset = new("EventSessionOffset");
    public static readonly Prop EventModFrustrated = new("EventModFrustrated"), EventModDead = new("EventModDead"), EventModError = new("EventModError"), EventModSuspicious = new("EventModSuspicious");
    public static readonly Prop EventVarErrorKind = new("EventVarErrorKind"), EventVarFields = new("EventVarFields"), EventWebSourceFileUrl = new("EventWebSourceFileUrl");
    public static readonly Prop EventFirstInputDelay = new("EventFirstInputDelay"), EventCumulativeLayoutShift = new("EventCumulativeLayoutShift");
    public static readonly Prop SessionStart = new("SessionStart"), PageStart = new("PageStart");
    public static readonly Prop PageName = new("PageName"), PageUrl = new("PageUrl"), PageRefererUrl = new("PageRefererUrl"), PageIp = new("PageIp"), PageLatLong = new("PageLatLong");
    public static readonly Prop PageAgent = new("PageAgent"), PageUserAgent = new("PageUserAgent");
    public static readonly Prop PageBrowser = new("PageBrowser"), PageBrowserVersion = new("PageBrowserVersion"), PageDevice = new("PageDevice"), PagePlatform = new("PagePlatform"), PageOperatingSystem = new("PageOperatingSystem");
    public static readonly Prop PageDuration = new("PageDuration"), PageActiveDuration = new("PageActiveDuration");
    public static readonly Prop PageScreenWidth = new("PageScreenWidth"), PageScreenHeight = new("PageScreenHeight"), PageViewportWidth = new("PageViewportWidth"), PageViewportHeight = new("PageViewportHeight");
    public static readonly Prop PageNumEvents = new("PageNumEvents"), PageNumDerivedEvents = new("PageNumDerivedEvents"), PageNumInfos = new("PageNumInfos"), PageNumWarnings = new("PageNumWarnings"), PageNumErrors = new("PageNumErrors");
    public static readonly Prop PageClusterId = new("PageClusterId"), PageMaxScrollDepthPercent = new("PageMaxScrollDepthPercent");
    public static readonly Prop LoadDomContentTime = new("LoadDomContentTime"), LoadEventTime = new("LoadEventTime"), LoadFirstPaintTime = new("LoadFirstPaintTime"), LoadLargestPaintTime = new("LoadLargestPaintTime");
    public static readonly Prop ReqUrl = new("ReqUrl"), ReqMethod = new("ReqMethod"), ReqStatus = new("ReqStatus");
    public static readonly Prop AppName = new("AppName"), AppPackageName = new("AppPackageName"), AppDeviceModel = new("AppDeviceModel"), AppDeviceVendor = new("AppDeviceVendor");
    public static readonly Prop AppVersion = new("AppVersion"), AppOsVersion = new("AppOsVersion"), AppViewName = new("AppViewName"), EventMobileSourceFile = new("EventMobileSourceFile");
}

internal static class Tables
{
    public static readonly JsonEncodedText Empty = Txt.E(""), EmptyObject = Txt.E("{}"), Thrash = Txt.E("mouse");

    private static readonly Dictionary<string, JsonEncodedText> s_types = new[]
    {
        "click", "change", "navigate", "load", "seen", "custom", "custom_error", "uservar", "abandon", "thrash", "request",
    }.ToDictionary(s => s, Txt.E);
    public static JsonEncodedText TypeText(string t) => s_types[t];

    private static readonly (string Type, int Weight)[] s_weights =
    {
        ("click", 32), ("seen", 12), ("change", 9), ("custom", 15), ("custom_error", 4), ("request", 8), ("thrash", 2),
    };
    private static readonly int s_totalWeight = s_weights.Sum(x => x.Weight);
    public static string PickType(ref Rng r)
    {
        int x = r.Int(s_totalWeight);
        foreach (var (t, wgt) in s_weights) { if (x < wgt) return t; x -= wgt; }
        return "click";
    }

    // ------------------------------------------------------------ devices
    public sealed record Profile(JsonEncodedText Agent, JsonEncodedText Browser, JsonEncodedText BrowserVersion, JsonEncodedText Device,
        JsonEncodedText Platform, JsonEncodedText Os, int ScreenW, int ScreenH, int ViewW, int ViewH, bool IsApp = false,
        JsonEncodedText DeviceModel = default, JsonEncodedText DeviceVendor = default);

    private static Profile Web(string agent, string browser, string ver, string device, string platform, string os, int sw, int sh, int vw, int vh)
        => new(Txt.E(agent), Txt.E(browser), Txt.E(ver), Txt.E(device), Txt.E(platform), Txt.E(os), sw, sh, vw, vh);

    public static readonly Profile[] Profiles =
    {
        Web("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome", "124.0.6367.91", "Desktop", "web", "Windows", 1920, 1080, 1903, 969),
        Web("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_6; Rigor) AppleWebKit/604.1.28 (KHTML, like Gecko) Version/11.0 Safari/604.1.28", "Safari", "11.0", "Desktop", "web", "OS X", 1440, 900, 1440, 789),
        Web("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "Mobile Safari", "17.4", "Mobile", "web", "iOS", 390, 844, 390, 664),
        Web("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox", "125.0", "Desktop", "web", "Linux", 2560, 1440, 1280, 1305),
        Web("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36", "Chrome Mobile", "124.0.6367.82", "Mobile", "web", "Android", 412, 915, 412, 839),
        Web("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", "Mobile Safari", "16.6", "Tablet", "web", "iOS", 820, 1180, 820, 1060),
        new(Txt.E("FullStory iOS 1.49.0 (Fruit Shoppe 3.2.1)"), Txt.E(""), Txt.E("17.4.1"), Txt.E("Mobile"), Txt.E("ios"), Txt.E("iOS"), 390, 844, 390, 844,
            IsApp: true, DeviceModel: Txt.E("iPhone15,2"), DeviceVendor: Txt.E("Apple")),
    };

    public static readonly JsonEncodedText AppName = Txt.E("Fruit Shoppe"), AppPackage = Txt.E("com.example.fruitshoppe"), AppVersion = Txt.E("3.2.1 (412)");
    public static readonly JsonEncodedText[] MobileSourceFiles = Txt.E("CartViewController.swift:118", "MarketView.swift:42", "CheckoutFlow.swift:301");

    // ------------------------------------------------------------ people
    public sealed record Person(JsonEncodedText Name, JsonEncodedText Email, JsonEncodedText AppKey, bool HasEmail, string RawName);
    private static Person Pe(string name, string email, int key, bool hasEmail = true) => new(Txt.E(name), Txt.E(email), Txt.E("cust-" + key), hasEmail, name);
    public static readonly Person[] People =
    {
        Pe("User 90791", "user90791@example.com", 90791),
        Pe("Daniel Falko", "daniel.falko@example.com", 10442),
        Pe("Zoë Ñúñez-Brontë", "zoe.nunez@example.com", 22317),
        Pe("山田 太郎", "taro.yamada@example.jp", 31001),
        Pe("Conan O'Brien \"The Tank\"", "conan@example.com", 41998),
        Pe("Ada Lovelace", "", 50815, hasEmail: false),
        Pe("Ørjan Ødegård", "orjan@example.no", 61234),
        Pe("김민수", "minsu.kim@example.kr", 70077),
        Pe("Back\\slash Person", "backslash@example.com", 81111),
        Pe("🦄 Unicorn Rider", "unicorn@example.com", 92929),
        Pe("Alexandra Konstantinopoulou-Papadimitriou", "alex.kp@example.gr", 13579),
        Pe("José Álvarez", "jose@example.es", 24680),
    };

    // ------------------------------------------------------------ pages
    public sealed record Site(JsonEncodedText Url, JsonEncodedText Name, JsonEncodedText ViewName);
    private static Site Si(string url, string name, string view) => new(Txt.E(url), Txt.E(name), Txt.E(view));
    public static readonly Site[] Pages =
    {
        Si("https://fruitshoppe.example.com/#/", "Home", "HomeView"),
        Si("https://fruitshoppe.example.com/#/market", "Market", "MarketView"),
        Si("https://fruitshoppe.example.com/#/market?category=berries&sort=price_asc", "Market", "MarketView"),
        Si("https://fruitshoppe.example.com/#/cart", "Cart", "CartViewController"),
        Si("https://fruitshoppe.example.com/#/checkout", "Checkout", "CheckoutFlow"),
        Si("https://fruitshoppe.example.com/#/product/mangocados?ref=featured&utm_source=newsletter&utm_medium=email", "Product", "ProductDetail"),
        Si("https://fruitshoppe.example.com/#/search?q=%E3%83%A1%E3%83%AD%E3%83%B3&lang=ja", "Search", "SearchView"),
        Si("https://fruitshoppe.example.com/#/account/orders", "", "OrdersView"),
    };
    public static readonly JsonEncodedText[] Referers = Txt.E("https://fruitshoppe.example.com/", "", "https://www.google.com/", "https://t.co/xyz123", "https://fruitshoppe.example.com/#/market");
    public static readonly JsonEncodedText[] LatLongs = Txt.E("39.0481,-77.4728", "19.4357,-99.1438", "51.5072,-0.1276", "35.6895,139.6917", "-33.8688,151.2093", "");

    // ------------------------------------------------------------ elements
    public sealed record Element(JsonEncodedText Text, JsonEncodedText Selector, JsonEncodedText SelectorTok);
    private static Element El(string text, string css)
    {
        // css: "html.no-js > body.ng-scope > div.content > a.cta-go-market[href=#/market]"
        // legacy token form: "html .no%2Djs body .ng%2Dscope div .content a .cta%2Dgo%2Dmarket =href=%23%2Fmarket"
        var tok = new StringBuilder();
        foreach (var part in css.Split(" > "))
        {
            string p = part, attr = "";
            int br = p.IndexOf('[');
            if (br >= 0) { attr = p[(br + 1)..^1]; p = p[..br]; }
            var bits = p.Split('.');
            if (tok.Length > 0) tok.Append(' ');
            tok.Append(bits[0]);
            foreach (var c in bits.Skip(1)) tok.Append(" .").Append(Esc(c));
            if (attr.Length > 0)
            {
                int eq = attr.IndexOf('=');
                tok.Append(" =").Append(attr[..eq]).Append('=').Append(Esc(attr[(eq + 1)..]));
            }
        }
        return new(Txt.E(text), Txt.E(css), Txt.E(tok.ToString()));

        static string Esc(string s)
        {
            var sb = new StringBuilder();
            foreach (var ch in s)
                if (char.IsAsciiLetterOrDigit(ch)) sb.Append(ch);
                else foreach (var by in Encoding.UTF8.GetBytes(ch.ToString())) sb.Append('%').Append(by.ToString("X2"));
            return sb.ToString();
        }
    }
    public static readonly Element[] Elements =
    {
        El("Market", "html.no-js > body.ng-scope > div.header > nav.navbar.navbar-default.navbar-fixed-top > div.container > a.app-control.cta-go-market[href=#/market]"),
        El("Add to cart", "html.no-js > body.ng-scope > div.content > div.market-place.ng-scope > div.fruit-list > div.fruit-box > a.btn.btn-primary.btn-sm.cta-add-to-cart"),
        El("My Cart", "html.no-js > body.ng-scope > div.header > div.app-controls > a.app-control.btn.btn-danger.btn-sm.cart[href=#/cart] > span"),
        El("Checkout", "html.no-js > body.ng-scope > div.content > div.container.ng-scope > a.btn.btn-primary.btn-sm.cta-go-checkout.ng-scope"),
        El("Purchase", "html.no-js > body.ng-scope > div.content > form.ng-pristine.ng-valid > button.btn.btn-block.btn-primary.cta-checkout"),
        El("Mangocados", "html.no-js > body.ng-scope > div.content > div.home-features > div.col-sm-12 > div.featured-fruit"),
        El("", "html.no-js > body.ng-scope > div.content > div.fruit-list > div.col-lg-3.col-md-4 > div.fruit-bluebs.fruit-box > div.fruit-pic"),
        El("Your F.S. Order", "html.no-js > body.ng-scope > div.content > div.zig-zag > div.col-xs-10.col-xs-offset-1.text-center > h3.text-mono"),
        El("Search 🍉", "html.no-js > body.ng-scope > div.header > form#search > input.form-control.input-sm[type=search]"),
        El("Crème fraîche & Co.", "html.no-js > body.ng-scope > div.content > ul.menu > li.menu-item.is-active > a[href=/products?id=42&lang=fr]"),
    };
    public static readonly JsonEncodedText[] ChangeValues = Txt.E("Fruit", "Buyer", "123 Produce Aisle Ave", "true", "false", "4111 **** **** 1111", "");

    // ------------------------------------------------------------ requests and errors
    public sealed record Request(JsonEncodedText Url, JsonEncodedText Method, int Status);
    public static readonly Request[] Requests =
    {
        new(Txt.E("https://api.fruitshoppe.example.com/v1/products?page=2&limit=50"), Txt.E("GET"), 200),
        new(Txt.E("https://api.fruitshoppe.example.com/v1/cart"), Txt.E("POST"), 201),
        new(Txt.E("https://api.fruitshoppe.example.com/v1/cart/items/17"), Txt.E("DELETE"), 204),
        new(Txt.E("https://api.fruitshoppe.example.com/v1/checkout"), Txt.E("PUT"), 200),
        new(Txt.E("https://cdn.fruitshoppe.example.com/img/mangocados.webp"), Txt.E("GET"), 304),
    };
    public static readonly int[] ErrorStatuses = { 400, 401, 404, 429, 500, 502, 503 };
    public static readonly JsonEncodedText[] ErrorKinds = Txt.E("Error", "TypeError", "ReferenceError", "UnhandledRejection");
    public static readonly JsonEncodedText[] SourceFiles = Txt.E("https://fruitshoppe.example.com/static/js/app.3f2a9c.js", "https://fruitshoppe.example.com/static/js/vendor.88e1.js", "");

    // ------------------------------------------------------------ hostile values
    public static readonly string[] HostileRaw =
    {
        "He said \"hi\" and left",
        "line one\nline two\r\n\ttabbed",
        "back\\slash C:\\temp\\new\\",
        "Crème brûlée à la façon de Zoë",
        "注文が完了しました（配送は明日）",
        "🎉 party 🛒 cart 👩‍💻 dev 🇯🇵",
        "<script>alert('x')</script> & \"amp\"",
        "",
        "ÆØÅ Ελληνικά Кириллица עברית العربية",
        "ctl\u0001\u001f end",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
        "{\"looks\":\"like json\"}",
    };
    public static readonly JsonEncodedText[] Hostile = HostileRaw.Select(Txt.E).ToArray();
    public static readonly JsonEncodedText[] HostileNames = Txt.E("Order \"Completed\"", "Commande passée — été", "注文完了 🎉", "multi\nline\\name", "Checkout Error");
    public static readonly JsonEncodedText HostileVarFields = Txt.E("{\"Label\":\"He said \\\"hi\\\"\",\"order\":{\"total\":4}}");

    public static readonly string[] LongRaw = Enumerable.Range(0, 3).Select(BuildLong).ToArray();
    public static readonly JsonEncodedText[] Long = LongRaw.Select(Txt.E).ToArray();
    private static string BuildLong(int v)
    {
        string[] pieces = { "Lorem ipsum dolor sit amet, ", "\"quoted\" ", "back\\slash ", "new\nline ", "é à ü ", "漢字かな ", "🎉🛒 ", "tab\there " };
        var sb = new StringBuilder(5100);
        sb.Append("long#").Append(v).Append(": ");
        int k = v;
        while (sb.Length < 4980) sb.Append(pieces[k++ % pieces.Length]);
        sb.Append("…end");
        return sb.ToString();
    }

    private sealed record VarSet(Prop Str, Prop Int, Prop Real, Prop Bool, Prop Date, Prop Strs, Prop Ints, Prop Reals, Prop Bools, Prop Dates);
    private static VarSet Vs(string prefix) => new(
        new(prefix + "_Label_str"), new(prefix + "_count_int"), new(prefix + "_order.total_real"), new(prefix + "_isGift_bool"),
        new(prefix + "_shippedAt_date"), new(prefix + "_tags_strs"), new(prefix + "_qtys_ints"), new(prefix + "_prices_reals"),
        new(prefix + "_flags_bools"), new(prefix + "_visits_dates"));
    private static readonly VarSet[] s_hostileSets = { Vs("evt"), Vs("user"), Vs("page") };
    private static readonly Prop s_note = new("evt_note_str"), s_unicodeName = new("evt_名前_str"), s_deep = new("evt_CamelCase.Nested.deepValue_str"),
        s_big = new("evt_bigNumber_int"), s_upper = new("evt_UPPER_real");
    private static readonly JsonEncodedText s_yamada = Txt.E("山田");

    /// <summary>Every suffix for every prefix, dotted and mixed-case names, unicode, quotes, long strings.</summary>
    public static void WriteHostile(Emitter e, ref Rng r, long i, long t)
    {
        long k = i / HostileEveryDiv;
        for (int s = 0; s < s_hostileSets.Length; s++)
        {
            var v = s_hostileSets[s];
            e.Str(v.Str, Hostile[(int)((k + s) % Hostile.Length)]);
            e.Int(v.Int, r.Range(-1000, 1_000_000));
            if ((k + s) % 2 == 0) e.Int(v.Real, 4); else e.Real(v.Real, Math.Round(r.Double() * 200, 2));
            e.Bool(v.Bool, r.Chance(0.5));
            e.Ts(v.Date, t - r.Long(86_400_000L * 30));
            e.StrArray(v.Strs, [Hostile[(int)((k + s + 3) % Hostile.Length)], Hostile[(int)((k + s + 5) % Hostile.Length)], Empty]);
            e.IntArray(v.Ints, [1, r.Range(2, 100), -7]);
            e.RealArray(v.Reals, [1.5, 2, Math.Round(r.Double() * 10, 3)]);
            e.BoolArray(v.Bools, [true, false, r.Chance(0.5)]);
            e.TsArray(v.Dates, [t - 86_400_000L, t - r.Long(86_400_000L * 365)]);
        }
        if (k % 2 == 0) e.Str(s_note, Long[(int)(k / 2 % Long.Length)]);
        e.Str(s_unicodeName, s_yamada);
        e.Str(s_deep, Hostile[(int)((k + 7) % Hostile.Length)]);
        e.Int(s_big, k % 3 == 0 ? long.MaxValue - k : -(1L << 53) - 1);
        e.Real(s_upper, k % 2 == 0 ? 1e21 : 0.1 + 0.2);
    }
    private const int HostileEveryDiv = EventGenerator.HostileEvery;

    // ------------------------------------------------------------ user and page vars
    private static readonly Prop u_plan = new("user_plan_str"), u_signup = new("user_signupDate_date"), u_logins = new("user_loginCount_int"),
        u_ltv = new("user_ltv_real"), u_beta = new("user_betaTester_bool"), u_roles = new("user_roles_strs"), u_fav = new("user_favoriteFruit_str");
    private static readonly JsonEncodedText[] s_plans = Txt.E("free", "pro", "enterprise", "");
    private static readonly JsonEncodedText[] s_roles = Txt.E("buyer", "admin", "reviewer");
    private static readonly JsonEncodedText[] s_fruits = Txt.E("Mangocados", "Bluebs", "Kiwi 🥝", "Açaí");

    public static void WriteUserVars(Emitter e, ref Rng r, Person p, long userCreated)
    {
        e.Str(u_plan, s_plans[r.Int(s_plans.Length)]);
        e.Ts(u_signup, userCreated);
        e.Int(u_logins, r.Range(1, 500));
        if (r.Chance(0.5)) e.Int(u_ltv, r.Range(0, 1000)); else e.Real(u_ltv, Math.Round(r.Double() * 1000, 2));
        e.Bool(u_beta, r.Chance(0.2));
        e.StrArray(u_roles, s_roles.AsSpan(0, r.Range(1, 4)));
        e.Str(u_fav, s_fruits[r.Int(s_fruits.Length)]);
    }

    private static readonly Prop pg_foobar = new("page_foobar_str"), pg_section = new("page_section_str"), pg_variant = new("page_experiment.variant_str"), pg_count = new("page_loadCount_int");
    private static readonly JsonEncodedText s_barbaz = Txt.E("barbaz");
    private static readonly JsonEncodedText[] s_sections = Txt.E("produce", "dairy", "bäckerei", "");
    private static readonly JsonEncodedText[] s_variants = Txt.E("A", "B", "control");

    public static void WritePageVars(Emitter e, int pick)
    {
        e.Str(pg_foobar, s_barbaz);
        e.Str(pg_section, s_sections[pick % s_sections.Length]);
        if (pick % 2 == 0) e.Str(pg_variant, s_variants[pick / 2 % s_variants.Length]);
        e.Int(pg_count, pick % 17);
    }

    // ------------------------------------------------------------ custom event templates
    public sealed class CustomTemplate
    {
        public required JsonEncodedText Name { get; init; }
        public required JsonEncodedText VarFields { get; init; }
        public required WriteVars Vars { get; init; }
        public void Write(Emitter e, ref Rng r) => Vars(e, ref r);
    }
    public delegate void WriteVars(Emitter e, ref Rng r);

    private static readonly Prop e_orderId = new("evt_order.order_id_str"), e_total = new("evt_order.total_real"), e_items = new("evt_order.items_real"),
        e_revenue = new("evt_revenue_real"), e_tax = new("evt_tax_real"), e_shipping = new("evt_shipping_real"), e_coupons = new("evt_coupons_strs"),
        e_currency = new("evt_currency_str"), e_productId = new("evt_product_id_str"), e_name = new("evt_name_str"), e_price = new("evt_price_str"),
        e_priceRaw = new("evt_price_raw_real"), e_featured = new("evt_featuredFruit_real"), e_onSale = new("evt_onSale_bool"), e_qty = new("evt_quantity_int"),
        e_type = new("evt_type_str"), e_code = new("evt_code_str"), e_message = new("evt_message_str"), e_query = new("evt_query_str"),
        e_results = new("evt_results_int"), e_filters = new("evt_filters_strs"), e_plan = new("evt_plan_str"), e_trial = new("evt_trial_bool"),
        e_trialEnds = new("evt_trialEnds_date"), e_ratings = new("evt_ratings_ints"), e_weights = new("evt_weights_reals");
    private static readonly JsonEncodedText[] s_orderIds = Txt.E("j55t459xy", "k12ab34cd", "zz9plural9", "ord-000042");
    private static readonly JsonEncodedText[] s_products = Txt.E("mangocados", "bluebs", "beans", "kiwi");
    private static readonly JsonEncodedText[] s_productNames = Txt.E("Mangocados", "Bluebs", "Jelly Beans", "Kiwi 🥝");
    private static readonly JsonEncodedText[] s_prices = Txt.E("$4.27", "$0.99", "$12.00", "€3,50");
    private static readonly JsonEncodedText[] s_errTypes = Txt.E("Out of Stock", "Server Error (500)");
    private static readonly JsonEncodedText[] s_errCodes = Txt.E("OOS-134B", "AC10XY2");
    private static readonly JsonEncodedText[] s_errMsgs = Txt.E("The product is out of stock", "invalid. Uh. Something went wrong.");
    private static readonly JsonEncodedText[] s_queries = Txt.E("mango", "blue berries", "メロン", "\"exact phrase\"", "");
    private static readonly JsonEncodedText[] s_filters = Txt.E("organic", "on-sale", "local");
    private static readonly JsonEncodedText[] s_coupons = Txt.E("SUMMER10", "FREESHIP");
    private static readonly JsonEncodedText s_usd = Txt.E("USD");

    public static readonly CustomTemplate[] Templates =
    {
        new() { Name = Txt.E("Product Added"), VarFields = Txt.E("{\"product_id\":\"mangocados\",\"quantity\":1}"), Vars = (Emitter e, ref Rng r) =>
        {
            int p = r.Int(s_products.Length);
            e.Str(e_productId, s_products[p]); e.Str(e_name, s_productNames[p]); e.Str(e_price, s_prices[p]);
            e.Real(e_priceRaw, Math.Round(0.5 + r.Double() * 20, 2)); e.Int(e_qty, r.Range(1, 6));
            if (r.Chance(0.5)) e.Int(e_featured, r.Range(0, 5));
            e.Bool(e_onSale, r.Chance(0.3));
        } },
        new() { Name = Txt.E("Order Completed"), VarFields = Txt.E("{\"order\":{\"order_id\":\"j55t459xy\",\"total\":8.54,\"items\":2}}"), Vars = (Emitter e, ref Rng r) =>
        {
            e.Str(e_orderId, s_orderIds[r.Int(s_orderIds.Length)]);
            if (r.Chance(0.2)) e.Int(e_total, r.Range(1, 100)); else e.Real(e_total, Math.Round(r.Double() * 100, 2));
            e.Int(e_items, r.Range(1, 9));
            e.Real(e_revenue, Math.Round(r.Double() * 90, 2)); e.Real(e_tax, Math.Round(r.Double() * 9, 2)); e.Real(e_shipping, r.Chance(0.5) ? 0 : 4.99);
            e.Str(e_currency, s_usd);
            e.StrArray(e_coupons, s_coupons.AsSpan(0, r.Int(3)));
        } },
        new() { Name = Txt.E("Checkout Error"), VarFields = Txt.E("{\"type\":\"Out of Stock\",\"code\":\"OOS-134B\"}"), Vars = (Emitter e, ref Rng r) =>
        {
            int x = r.Int(2);
            e.Str(e_type, s_errTypes[x]); e.Str(e_code, s_errCodes[x]); e.Str(e_message, s_errMsgs[x]);
            e.Int(e_items, 2); e.Str(e_orderId, s_orderIds[0]); e.Real(e_total, 8.54);
        } },
        new() { Name = Txt.E("Search Performed"), VarFields = Txt.E("{\"query\":\"mango\"}"), Vars = (Emitter e, ref Rng r) =>
        {
            e.Str(e_query, s_queries[r.Int(s_queries.Length)]); e.Int(e_results, r.Range(0, 300));
            e.StrArray(e_filters, s_filters.AsSpan(0, r.Int(4)));
            e.IntArray(e_ratings, [r.Range(1, 6), r.Range(1, 6)]);
        } },
        new() { Name = Txt.E("Signed Up"), VarFields = Txt.E("{\"plan\":\"pro\",\"trial\":true}"), Vars = (Emitter e, ref Rng r) =>
        {
            e.Str(e_plan, s_plans[r.Int(s_plans.Length)]); e.Bool(e_trial, r.Chance(0.5));
            e.Ts(e_trialEnds, 1_767_225_600_000L + r.Long(86_400_000L * 60));
            e.RealArray(e_weights, [0.25, 1, Math.Round(r.Double(), 3)]);
        } },
        new() { Name = Txt.E("Video Played"), VarFields = Txt.E("{}"), Vars = (Emitter e, ref Rng r) => { } },
    };
}
