using System.Text.Encodings.Web;
using Identity.RegionSample.SignIn;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Identity.RegionSample.Pages;

/// <summary>The regional app's four pages: home, sign-in, a forced re-authentication, and the signed-in user.</summary>
public static class RegionPages
{
    private const string SignedInHome = "/me";

    public static WebApplication MapRegionPages(this WebApplication app)
    {
        app.MapGet("/", Home);
        app.MapGet("/signin", SignIn);
        app.MapGet("/prompt-login", PromptLogin);
        app.MapGet("/me", MeAsync).RequireAuthorization();
        app.MapPost("/signout", SignOutAsync);
        return app;
    }

    private static IResult Home(HttpRequest request, IOptions<RegionSignInOptions> options)
    {
        var failed = request.Query.ContainsKey("signin")
            ? "<p role=\"alert\">Sign-in did not complete.</p>"
            : "";
        return Html.Page(options.Value.Region, $"""
            <h1>Region {Html.Encode(options.Value.Region)}</h1>
            {failed}
            <p><a href="/signin">Sign in</a></p>
            """);
    }

    private static IResult SignIn() =>
        TypedResults.Challenge(new AuthenticationProperties { RedirectUri = SignedInHome });

    /// <summary>OpenID Connect Core §3.1.2.1 <c>prompt=login</c>: Identity asks for the password even with a session.</summary>
    private static IResult PromptLogin()
    {
        var properties = new AuthenticationProperties { RedirectUri = SignedInHome };
        properties.SetParameter(OpenIdConnectParameterNames.Prompt, "login");
        return TypedResults.Challenge(properties);
    }

    private static async Task<IResult> MeAsync(HttpContext context, IAntiforgery antiforgery, IOptions<RegionSignInOptions> options)
    {
        var user = context.User;
        var region = options.Value.Region;
        var (amr, authTime, emailVerified) = ReadIdToken(await context.GetTokenAsync(OpenIdConnectParameterNames.IdToken));
        var tokens = antiforgery.GetAndStoreTokens(context);

        return Html.Page(region, $"""
            <h1>Region {Html.Encode(region)}</h1>
            <p id="who">Signed in as {Html.Encode(user.FindFirst("email")?.Value)} ({Html.Encode(user.FindFirst("sub")?.Value)}) in region {Html.Encode(region)}</p>
            <dl>
              <dt>amr</dt><dd id="amr">{Html.Encode(amr)}</dd>
              <dt>auth_time</dt><dd id="auth-time">{Html.Encode(authTime)}</dd>
              <dt>email_verified</dt><dd id="email-verified">{Html.Encode(emailVerified)}</dd>
            </dl>
            <p><a href="/replica">The region's users (replica)</a></p>
            <form method="post" action="/signout">
              <input type="hidden" name="{Html.Encode(tokens.FormFieldName)}" value="{Html.Encode(tokens.RequestToken)}" />
              <button type="submit">Sign out</button>
            </form>
            """);
    }

    /// <summary>
    /// Ends the local session and Identity's (RP-initiated logout: the saved ID token goes as <c>id_token_hint</c>,
    /// Identity returns to <c>/signout-callback-oidc</c>, and the handler then to <c>/</c>).
    /// </summary>
    private static async Task<IResult> SignOutAsync(HttpContext context, IAntiforgery antiforgery)
    {
        if (!await antiforgery.IsRequestValidAsync(context))
        {
            return TypedResults.BadRequest();
        }

        return TypedResults.SignOut(new AuthenticationProperties { RedirectUri = "/" },
            [CookieAuthenticationDefaults.AuthenticationScheme, OpenIdConnectDefaults.AuthenticationScheme]);
    }

    /// <summary>The ID token was validated by the handler at sign-in; here it is only read.</summary>
    private static (string Amr, string AuthTime, string EmailVerified) ReadIdToken(string? idToken)
    {
        if (idToken is null)
        {
            return ("", "", "");
        }

        var token = new JsonWebToken(idToken);
        var amr = string.Join(" ", token.Claims.Where(c => c.Type == "amr").Select(c => c.Value));
        var authTime = token.TryGetPayloadValue<long>("auth_time", out var seconds)
            ? $"{seconds} ({DateTimeOffset.FromUnixTimeSeconds(seconds):yyyy-MM-dd HH:mm:ss} UTC)"
            : "";
        var emailVerified = token.TryGetPayloadValue<bool>("email_verified", out var verified) ? (verified ? "true" : "false") : "";
        return (amr, authTime, emailVerified);
    }
}

/// <summary>Server-rendered HTML without scripts; every value is encoded.</summary>
internal static class Html
{
    public static string Encode(string? value) => HtmlEncoder.Default.Encode(value ?? "");

    public static IResult Page(string region, string body) => TypedResults.Content($"""
        <!DOCTYPE html>
        <html lang="en">
        <head><meta charset="utf-8" /><title>Regional app ({Encode(region)})</title></head>
        <body>
        {body}
        </body>
        </html>
        """, "text/html; charset=utf-8");
}
