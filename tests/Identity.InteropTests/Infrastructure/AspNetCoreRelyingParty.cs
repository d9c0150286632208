using System.Net;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Identity.InteropTests.Infrastructure;

/// <summary>
/// A web app signing in through Identity with nothing but the stock ASP.NET Core OpenID Connect handler, on Kestrel
/// at 127.0.0.1: code flow with PKCE, <c>form_post</c> (the handler's default), tokens saved, userinfo fetched.
/// <c>/me</c> needs a signed-in user and answers its claims; <c>/logout</c> signs out here and at Identity.
/// </summary>
public sealed class AspNetCoreRelyingParty : IAsyncDisposable
{
    public const string ClientId = "aspnet-rp";

    private readonly WebApplication _app;

    private AspNetCoreRelyingParty(WebApplication app, Uri baseAddress) => (_app, BaseAddress) = (app, baseAddress);

    public Uri BaseAddress { get; }

    public Uri RedirectUri => new(BaseAddress, "/signin-oidc");

    public Uri PostLogoutRedirectUri => new(BaseAddress, "/signout-callback-oidc");

    public static Uri AddressAt(int port) => new($"http://127.0.0.1:{port}/");

    public static async Task<AspNetCoreRelyingParty> StartAsync(int port, string issuer, string clientSecret)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.Sources.Clear(); // not Identity's appsettings.json, which sits in the same output folder
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        builder.Logging.SetMinimumLevel(LogLevel.Warning)
            // The handler's correlation and nonce cookies say SameSite=None without Secure here (see below): known, not news.
            .AddFilter("Microsoft.AspNetCore.Http.ResponseCookies", LogLevel.Error);
        builder.Services.AddDataProtection().UseEphemeralDataProtectionProvider();
        builder.Services.AddAuthorization();
        builder.Services
            .AddAuthentication(options =>
            {
                options.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
                options.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
            })
            .AddCookie()
            .AddOpenIdConnect(options =>
            {
                options.Authority = issuer;
                options.RequireHttpsMetadata = false; // loopback HTTP: Identity has no certificate in the tests
                options.ClientId = ClientId;
                options.ClientSecret = clientSecret;
                options.ResponseType = "code";
                options.UsePkce = true;
                options.SaveTokens = true;
                options.GetClaimsFromUserInfoEndpoint = true;
                options.MapInboundClaims = false; // keep "sub" and "email" as Identity names them
                options.Scope.Add("email");
                options.Scope.Add("offline_access");

                // The handler's correlation and nonce cookies are Secure by default; this app is served over HTTP.
                options.CorrelationCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                options.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            });

        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/", (HttpContext context) => context.User.Identity?.IsAuthenticated == true
            ? Results.Text($"signed in as {context.User.FindFirst("sub")?.Value}")
            : Results.Text("signed out"));
        app.MapGet("/me", MeAsync).RequireAuthorization();
        app.MapGet("/logout", () => Results.SignOut(new AuthenticationProperties { RedirectUri = "/" },
            [CookieAuthenticationDefaults.AuthenticationScheme, OpenIdConnectDefaults.AuthenticationScheme]));

        await app.StartAsync();
        return new AspNetCoreRelyingParty(app, AddressAt(port));
    }

    /// <summary>The signed-in user as the app sees it: claims (ID token and userinfo) and the tokens it saved.</summary>
    private static async Task<IResult> MeAsync(ClaimsPrincipal user, HttpContext context) => Results.Json(new
    {
        sub = user.FindFirst("sub")?.Value,
        email = user.FindFirst("email")?.Value,
        name = user.FindFirst("name")?.Value,
        accessToken = await context.GetTokenAsync("access_token") is { Length: > 0 },
        refreshToken = await context.GetTokenAsync("refresh_token") is { Length: > 0 },
        idToken = await context.GetTokenAsync("id_token") is { Length: > 0 },
    });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
