using System.Buffers.Text;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;

namespace AuthCodeBench;

/// <summary>The endpoints and issuer read from discovery.</summary>
/// <param name="Issuer">As discovery spells it: RFC 9207's <c>iss</c> is compared to it as a string.</param>
public sealed record Endpoints(string Issuer, Uri Authorization, Uri Token);

/// <summary>The timings of one round trip, or why it failed.</summary>
public readonly record struct RoundTrip(string? Error, long AuthorizeTicks, long TokenTicks);

/// <summary>
/// One person's user agent: its own cookies (the SSO session), its own connection, no automatic redirects.
/// The code is redeemed by the relying party's back end (a shared client without cookies, HTTP Basic client
/// authentication), as a web application would do it; the browser never calls the token endpoint.
/// </summary>
public sealed partial class BrowserSession : IDisposable
{
    private readonly BenchOptions options;
    private readonly Endpoints endpoints;
    private readonly HttpClient backend;
    private readonly CookieContainer cookies = new();
    private readonly SocketsHttpHandler handler;
    private readonly HttpClient browser;
    private readonly AuthenticationHeaderValue basic;

    public BrowserSession(BenchOptions options, Endpoints endpoints, HttpClient backend)
    {
        this.options = options;
        this.endpoints = endpoints;
        this.backend = backend;
        handler = new SocketsHttpHandler
        {
            UseCookies = true,
            CookieContainer = cookies,
            AllowAutoRedirect = false,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        };
        browser = new HttpClient(handler, disposeHandler: false) { Timeout = TimeSpan.FromSeconds(30) };
        // RFC 6749 §2.3.1: client_id and secret form-encoded, then Basic.
        basic = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(
            Uri.EscapeDataString(options.ClientId) + ":" + Uri.EscapeDataString(options.ClientSecret))));
    }

    /// <summary>The relying party's back end: one shared client, no cookies.</summary>
    public static HttpClient CreateBackend() => new(new SocketsHttpHandler
    {
        UseCookies = false,
        AllowAutoRedirect = false,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
    })
    { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>
    /// Signs in once through the real pages, as a browser does: authorize → 302 to the login page → GET the form
    /// (anti-forgery token and hidden fields) → POST email and password → 302 back to authorize → 302 to the client
    /// with a code, which is redeemed. Throws when any step is not what a browser would get.
    /// </summary>
    public async Task SignInAsync()
    {
        var request = NewRequest();
        using var first = await browser.GetAsync(request.Url);
        var loginUrl = Redirect(first, request.Url, "authorize without a session");
        if (!loginUrl.AbsolutePath.StartsWith("/Account/Login", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"authorize without a session should redirect to the login page, got {loginUrl}");
        }

        using var page = await browser.GetAsync(loginUrl);
        var html = await page.Content.ReadAsStringAsync();
        if (page.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"GET {loginUrl.PathAndQuery}: {(int)page.StatusCode}");
        }

        var form = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match input in Inputs().Matches(html))
        {
            if (Attribute(input.Value, "type") == "hidden" && Attribute(input.Value, "name") is { } name)
            {
                form[name] = Attribute(input.Value, "value") ?? "";
            }
        }

        if (!form.ContainsKey("__RequestVerificationToken"))
        {
            throw new InvalidOperationException("the login page has no anti-forgery token");
        }

        form["Input.Email"] = options.Email;
        form["Input.Password"] = options.Password;
        using var content = new FormUrlEncodedContent(form);
        using var posted = await browser.PostAsync(loginUrl, content);
        if (posted.StatusCode == HttpStatusCode.OK)
        {
            throw new InvalidOperationException("the login page refused the credentials (wrong password, missing user or lockout)");
        }

        var back = Redirect(posted, loginUrl, "POST /Account/Login");
        using var second = await browser.GetAsync(back);
        if (!cookies.GetAllCookies().Any(c => c.Name == options.SessionCookie))
        {
            throw new InvalidOperationException($"no {options.SessionCookie} cookie after signing in");
        }

        var code = CodeFrom(second, back, request.State, out var error);
        if (code is null)
        {
            throw new InvalidOperationException($"authorize after signing in: {error}");
        }

        if (await RedeemAsync(code, request) is { } redeemError)
        {
            throw new InvalidOperationException($"token after signing in: {redeemError}");
        }
    }

    /// <summary>authorize (with the SSO cookie) → 302 with code → token → 200 with tokens, timed in two parts.</summary>
    public async Task<RoundTrip> RoundTripAsync()
    {
        var request = NewRequest();
        var t0 = Stopwatch.GetTimestamp();
        string? code;
        string? error;
        using (var response = await browser.GetAsync(request.Url))
        {
            code = CodeFrom(response, request.Url, request.State, out error);
        }

        var t1 = Stopwatch.GetTimestamp();
        if (code is null)
        {
            return new RoundTrip(error, t1 - t0, 0);
        }

        error = await RedeemAsync(code, request);
        var t2 = Stopwatch.GetTimestamp();
        return new RoundTrip(error, t1 - t0, t2 - t1);
    }

    private readonly record struct AuthorizeRequest(Uri Url, string Verifier, string State, string Nonce);

    private AuthorizeRequest NewRequest()
    {
        var verifier = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var state = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));
        var nonce = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));
        var url = QueryHelpers.AddQueryString(endpoints.Authorization.AbsoluteUri, new Dictionary<string, string?>
        {
            ["client_id"] = options.ClientId,
            ["response_type"] = "code",
            ["redirect_uri"] = options.RedirectUri!.AbsoluteUri,
            ["scope"] = options.Scope,
            ["state"] = state,
            ["nonce"] = nonce,
            ["code_challenge"] = challenge,
            ["code_challenge_method"] = "S256",
        });
        return new AuthorizeRequest(new Uri(url), verifier, state, nonce);
    }

    /// <summary>The code of a 302 to the client's redirect URI with the expected state, or null and the reason.</summary>
    private string? CodeFrom(HttpResponseMessage response, Uri requestUrl, string state, out string? error)
    {
        if (response.StatusCode is not (HttpStatusCode.Found or HttpStatusCode.SeeOther))
        {
            error = $"authorize_status_{(int)response.StatusCode}";
            return null;
        }

        if (response.Headers.Location is not { } location)
        {
            error = "authorize_no_location";
            return null;
        }

        var target = location.IsAbsoluteUri ? location : new Uri(requestUrl, location);
        var expected = options.RedirectUri!;
        if (target.Scheme != expected.Scheme || target.Authority != expected.Authority || target.AbsolutePath != expected.AbsolutePath)
        {
            error = target.AbsolutePath.StartsWith("/Account/Login", StringComparison.OrdinalIgnoreCase)
                ? "authorize_sent_to_login" // the SSO session was not honoured
                : "authorize_redirect_elsewhere";
            return null;
        }

        var query = QueryHelpers.ParseQuery(target.Query);
        if (query.TryGetValue("error", out var oauthError))
        {
            error = $"authorize_error_{oauthError}";
            return null;
        }

        if (!query.TryGetValue("state", out var returnedState) || returnedState != state)
        {
            error = "authorize_state_mismatch";
            return null;
        }

        // RFC 9207: when the authority names itself, it must be the issuer from discovery.
        if (query.TryGetValue("iss", out var iss) && iss != endpoints.Issuer)
        {
            error = "authorize_iss_mismatch";
            return null;
        }

        if (!query.TryGetValue("code", out var code) || string.IsNullOrEmpty(code))
        {
            error = "authorize_no_code";
            return null;
        }

        error = null;
        return code.ToString();
    }

    /// <summary>Redeems the code as the client's back end; null when the response carries the expected tokens.</summary>
    private async Task<string?> RedeemAsync(string code, AuthorizeRequest request)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, endpoints.Token)
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code",
                ["code"] = code,
                ["redirect_uri"] = options.RedirectUri!.AbsoluteUri,
                ["code_verifier"] = request.Verifier,
            }),
        };
        message.Headers.Authorization = basic;
        using var response = await backend.SendAsync(message);
        var body = await response.Content.ReadAsByteArrayAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return $"token_status_{(int)response.StatusCode}";
        }

        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        if (!root.TryGetProperty("access_token", out var access) || access.GetString() is not { Length: > 0 })
        {
            return "token_no_access_token";
        }

        if (!root.TryGetProperty("token_type", out var type) || !string.Equals(type.GetString(), "Bearer", StringComparison.OrdinalIgnoreCase))
        {
            return "token_type_not_bearer";
        }

        if (!root.TryGetProperty("id_token", out var id) || id.GetString() is not { Length: > 0 } idToken)
        {
            return "token_no_id_token";
        }

        // The ID token belongs to this request: its nonce and audience (no signature check: not the server's cost).
        var parts = idToken.Split('.');
        if (parts.Length != 3)
        {
            return "id_token_not_a_jws";
        }

        using var payload = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1]));
        if (!payload.RootElement.TryGetProperty("nonce", out var nonce) || nonce.GetString() != request.Nonce)
        {
            return "id_token_nonce_mismatch";
        }

        if (!payload.RootElement.TryGetProperty("aud", out var aud)
            || !(aud.ValueKind == JsonValueKind.String ? aud.GetString() == options.ClientId : aud.EnumerateArray().Any(a => a.GetString() == options.ClientId)))
        {
            return "id_token_aud_mismatch";
        }

        return null;
    }

    private static Uri Redirect(HttpResponseMessage response, Uri requestUrl, string step)
    {
        if (response.StatusCode is not (HttpStatusCode.Found or HttpStatusCode.SeeOther or HttpStatusCode.Redirect) || response.Headers.Location is null)
        {
            throw new InvalidOperationException($"{step}: expected a redirect, got {(int)response.StatusCode}");
        }

        var location = response.Headers.Location;
        return location.IsAbsoluteUri ? location : new Uri(requestUrl, location);
    }

    private static string? Attribute(string tag, string name)
    {
        var match = Regex.Match(tag, $"\\s{name}=\"(?<v>[^\"]*)\"");
        return match.Success ? WebUtility.HtmlDecode(match.Groups["v"].Value) : null;
    }

    [GeneratedRegex("<input[^>]*>")]
    private static partial Regex Inputs();

    public void Dispose()
    {
        browser.Dispose();
        handler.Dispose();
    }
}
