using System.Net;
using System.Text.RegularExpressions;

namespace Identity.InteropTests.Infrastructure;

/// <summary>Whom the user agent signs in as when Identity shows its sign-in page.</summary>
public sealed record Person(string Email, string Password);

/// <summary>Where a navigation ended: a page (with its HTML), or a redirect to an address no test host serves.</summary>
public sealed record Landing(Uri Url, HttpStatusCode Status, string? Html)
{
    public Dictionary<string, string> Query => Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(Url.Query)
        .ToDictionary(p => p.Key, p => p.Value.ToString(), StringComparer.Ordinal);
}

/// <summary>
/// A person's browser over real sockets: one cookie jar, redirects followed one by one, Identity's sign-in form
/// filled in when it shows (anti-forgery token included), and a <c>response_mode=form_post</c> page submitted as its
/// script would. A redirect to an origin no test host serves (a relying party's callback that is not running) is
/// where a navigation ends.
/// </summary>
public sealed partial class UserAgent : IDisposable
{
    private const int MaxHops = 16;
    private readonly HttpClient _http;
    private readonly Uri[] _liveOrigins;

    public UserAgent(params Uri[] liveOrigins)
    {
        _liveOrigins = liveOrigins;
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    /// <summary>How many times this browser has posted the sign-in form.</summary>
    public int SignIns { get; private set; }

    /// <summary>Opens <paramref name="url"/>; signs in as <paramref name="person"/> if Identity asks (else stops on its page).</summary>
    public Task<Landing> OpenAsync(Uri url, Person? person = null) => FollowAsync(new HttpRequestMessage(HttpMethod.Get, url), person);

    public Task<Landing> OpenAsync(string url, Person? person = null) => OpenAsync(new Uri(url), person);

    /// <summary>Submits the first form of <paramref name="page"/> as it is (a confirmation button), then follows on.</summary>
    public Task<Landing> SubmitAsync(Landing page, Person? person = null) =>
        FollowAsync((HtmlForm.Find(page.Url, page.Html ?? "") ?? throw new InvalidOperationException($"No form on {page.Url}.")).Post(), person);

    public void Dispose() => _http.Dispose();

    private async Task<Landing> FollowAsync(HttpRequestMessage request, Person? person)
    {
        var signedInHere = false;
        for (var hop = 0; hop < MaxHops; hop++)
        {
            var url = request.RequestUri!;
            using var response = await _http.SendAsync(request);
            if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                var next = new Uri(url, location);
                if (!IsLive(next))
                {
                    return new Landing(next, response.StatusCode, null);
                }

                request = new HttpRequestMessage(HttpMethod.Get, next);
                continue;
            }

            var html = await response.Content.ReadAsStringAsync();
            var form = HtmlForm.Find(url, html);
            if (person is not null && form is not null && url.AbsolutePath == "/Account/Login")
            {
                if (html.Contains("Invalid email or password.", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"Identity refused the sign-in of {person.Email}.");
                }

                if (signedInHere)
                {
                    // OpenID Connect Core §3.1.2.1: a sign-in made for this request satisfies it; asking again is a loop.
                    throw new InvalidOperationException($"Identity showed its sign-in page again right after a successful sign-in (a login loop): {url}");
                }

                signedInHere = true;
                SignIns++;
                request = form.Post(new Dictionary<string, string> { ["Input.Email"] = person.Email, ["Input.Password"] = person.Password });
                continue;
            }

            if (form is { Action: var action } && action.GetLeftPart(UriPartial.Authority) != url.GetLeftPart(UriPartial.Authority)
                && html.Contains("document.form.submit()", StringComparison.Ordinal))
            {
                // OAuth 2.0 Form Post Response Mode: the page posts itself to the client.
                request = form.Post();
                continue;
            }

            return new Landing(url, response.StatusCode, html);
        }

        throw new InvalidOperationException($"More than {MaxHops} hops without landing: a redirect loop.");
    }

    private bool IsLive(Uri url) =>
        _liveOrigins.Any(origin => string.Equals(origin.GetLeftPart(UriPartial.Authority), url.GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase));

    /// <summary>The first <c>method="post"</c> form of a page: its absolute action and its hidden fields.</summary>
    private sealed partial class HtmlForm(Uri action, Dictionary<string, string> fields)
    {
        public Uri Action => action;

        public static HtmlForm? Find(Uri page, string html)
        {
            var match = PostForm().Match(html);
            if (!match.Success)
            {
                return null;
            }

            var tag = match.Groups["tag"].Value;
            var target = Attribute(tag, "action") is { Length: > 0 } a ? new Uri(page, a) : page;
            var hidden = Input().Matches(match.Groups["body"].Value)
                .Select(m => m.Value)
                .Where(input => Attribute(input, "type") == "hidden" && Attribute(input, "name") is not null)
                .GroupBy(input => Attribute(input, "name")!, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => Attribute(g.First(), "value") ?? "", StringComparer.Ordinal);
            return new HtmlForm(target, hidden);
        }

        public HttpRequestMessage Post(IDictionary<string, string>? values = null)
        {
            var body = new Dictionary<string, string>(fields, StringComparer.Ordinal);
            foreach (var (key, value) in values ?? new Dictionary<string, string>())
            {
                body[key] = value;
            }

            return new HttpRequestMessage(HttpMethod.Post, action) { Content = new FormUrlEncodedContent(body) };
        }

        private static string? Attribute(string tag, string name)
        {
            var match = Regex.Match(tag, $"\\s{name}=\"(?<v>[^\"]*)\"", RegexOptions.IgnoreCase);
            return match.Success ? WebUtility.HtmlDecode(match.Groups["v"].Value) : null;
        }

        [GeneratedRegex("(?<tag><form[^>]*method=\"post\"[^>]*>)(?<body>.*?)</form>", RegexOptions.Singleline | RegexOptions.IgnoreCase)]
        private static partial Regex PostForm();

        [GeneratedRegex("<input[^>]*>", RegexOptions.IgnoreCase)]
        private static partial Regex Input();
    }
}
