using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>
/// A user agent over HTTP: keeps Identity's cookies, follows nothing by itself, and reads forms the way a
/// browser would (anti-forgery token included). Browser tests with Chromium cover the same pages for real.
/// </summary>
public sealed partial class BrowserSession(IdentityServerHost? host, HttpClient? client = null)
{
    public HttpClient Http { get; } = client
        ?? host?.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true })
        ?? throw new ArgumentNullException(nameof(host));

    public static (string Verifier, string Challenge) Pkce()
    {
        var verifier = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        return (verifier, Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
    }

    public static string AuthorizeUrl(string clientId, string redirectUri, string? challenge, params (string Key, string Value)[] extra)
    {
        var query = new Dictionary<string, string?>
        {
            ["client_id"] = clientId,
            ["response_type"] = "code",
            ["redirect_uri"] = redirectUri,
            ["scope"] = "openid profile email offline_access",
            ["state"] = "st-" + Guid.NewGuid().ToString("n")[..8],
            ["nonce"] = "n-" + Guid.NewGuid().ToString("n")[..8],
        };
        if (challenge is not null)
        {
            query["code_challenge"] = challenge;
            query["code_challenge_method"] = "S256";
        }

        foreach (var (key, value) in extra)
        {
            query[key] = value;
        }

        return QueryHelpers.AddQueryString("/connect/authorize", query);
    }

    public Task<HttpResponseMessage> GetAsync(string url) => Http.GetAsync(url);

    /// <summary>Fills and posts the form found on <paramref name="page"/> (anti-forgery token and hidden fields included).</summary>
    public async Task<HttpResponseMessage> SubmitAsync(string pageUrl, string html, IDictionary<string, string> fields, string? button = null)
    {
        var form = new Dictionary<string, string>();
        foreach (Match input in Inputs().Matches(html))
        {
            var tag = input.Value;
            if (Attribute(tag, "type") == "hidden" && Attribute(tag, "name") is { } name)
            {
                form[name] = Attribute(tag, "value") ?? "";
            }
        }

        foreach (var (key, value) in fields)
        {
            form[key] = value;
        }

        if (button is not null)
        {
            form["decision"] = button;
        }

        return await Http.PostAsync(pageUrl, new FormUrlEncodedContent(form));
    }

    /// <summary>Signs in on the login page the server redirected to; returns the response of the POST.</summary>
    public async Task<HttpResponseMessage> SignInAsync(string loginUrl, string email, string password)
    {
        var page = await (await Http.GetAsync(loginUrl)).Content.ReadAsStringAsync();
        return await SubmitAsync(loginUrl, page, new Dictionary<string, string> { ["Input.Email"] = email, ["Input.Password"] = password });
    }

    /// <summary>Authorize; sign in if asked; follow Identity's redirects until one leaves for the client.</summary>
    public async Task<Uri> AuthorizeAsync(string authorizeUrl, string email, string password)
    {
        var response = await Http.GetAsync(authorizeUrl);
        for (var hops = 0; hops < 6; hops++)
        {
            if (response.StatusCode is not (HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther))
            {
                throw new InvalidOperationException($"Expected a redirect, got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }

            var location = Location(response);
            if (location.IsAbsoluteUri && location.Host != "localhost")
            {
                return location;
            }

            var local = location.IsAbsoluteUri ? location.PathAndQuery : location.OriginalString;
            response = local.StartsWith("/Account/Login", StringComparison.Ordinal)
                ? await SignInAsync(local, email, password)
                : await Http.GetAsync(local);
        }

        throw new InvalidOperationException("Too many redirects.");
    }

    public static Uri Location(HttpResponseMessage response) =>
        response.Headers.Location ?? throw new InvalidOperationException($"No Location header ({(int)response.StatusCode}).");

    public static Dictionary<string, string> Query(Uri uri) =>
        QueryHelpers.ParseQuery(uri.Query).ToDictionary(p => p.Key, p => p.Value.ToString());

    private static string? Attribute(string tag, string name)
    {
        var match = Regex.Match(tag, $"\\s{name}=\"(?<v>[^\"]*)\"");
        return match.Success ? WebUtility.HtmlDecode(match.Groups["v"].Value) : null;
    }

    [GeneratedRegex("<input[^>]*>")]
    private static partial Regex Inputs();
}
