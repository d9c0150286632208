using Identity.Server.AdminConsole;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Identity.Server.Hosting;

/// <summary>
/// The admin console at <c>/admin</c>: Razor Pages (area <c>AdminConsole</c>) on the operations the admin API uses,
/// signed in as a first-party client of Identity itself (authorization code + PKCE through Identity's own sign-in,
/// decision 0079), with a cookie of its own, separate from the SSO session.
/// </summary>
public static class AdminConsoleExtensions
{
    public static IHostApplicationBuilder AddAdminConsole(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<AdminConsoleOptions>().BindConfiguration(AdminConsoleOptions.SectionName)
            .ValidateDataAnnotations().ValidateOnStart();
        var options = builder.Configuration.GetSection(AdminConsoleOptions.SectionName).Get<AdminConsoleOptions>() ?? new AdminConsoleOptions();
        var insecureHttp = builder.Configuration.GetValue<bool>($"{OidcOptions.SectionName}:{nameof(OidcOptions.AllowInsecureHttp)}");
        var origin = ConsoleClient.Origin(builder.Configuration);
        var secure = insecureHttp ? CookieSecurePolicy.SameAsRequest : CookieSecurePolicy.Always;

        builder.Services.AddAuthentication()
            .AddCookie(ConsoleClient.CookieScheme, cookie =>
            {
                cookie.Cookie.Name = "identity.console";
                cookie.Cookie.Path = ConsoleClient.BasePath; // never sent to the sign-in pages nor the protocol endpoints
                cookie.Cookie.HttpOnly = true;
                cookie.Cookie.SameSite = SameSiteMode.Strict; // a console action never starts on another site
                cookie.Cookie.SecurePolicy = secure;
                cookie.ExpireTimeSpan = options.IdleTimeout;
                cookie.SlidingExpiration = true;
                cookie.ForwardChallenge = ConsoleClient.OidcScheme;
            })
            .AddOpenIdConnect(ConsoleClient.OidcScheme, oidc =>
            {
                // The issuer's own discovery document and JWKS, fetched over HTTP like any client would.
                oidc.Authority = origin.AbsoluteUri;
                oidc.RequireHttpsMetadata = !insecureHttp;
                oidc.ClientId = ConsoleClient.ClientId; // public: PKCE and the registered redirect URI bind the code
                oidc.ResponseType = OpenIdConnectResponseType.Code;
                oidc.ResponseMode = OpenIdConnectResponseMode.Query; // a same-site redirect: Lax correlation cookies suffice
                oidc.UsePkce = true;
                oidc.Scope.Clear();
                oidc.Scope.Add("openid");
                oidc.Scope.Add("email");
                oidc.CallbackPath = ConsoleClient.CallbackPath;
                oidc.SignedOutCallbackPath = ConsoleClient.SignedOutCallbackPath;
                oidc.SignedOutRedirectUri = ConsoleClient.BasePath + "/signed-out";
                oidc.SignInScheme = ConsoleClient.CookieScheme;
                oidc.MapInboundClaims = false;
                oidc.TokenValidationParameters.NameClaimType = "email";
                oidc.GetClaimsFromUserInfoEndpoint = false;
                oidc.SaveTokens = false;
                oidc.CorrelationCookie.SameSite = SameSiteMode.Lax;
                oidc.CorrelationCookie.SecurePolicy = secure;
                oidc.NonceCookie.SameSite = SameSiteMode.Lax;
                oidc.NonceCookie.SecurePolicy = secure;
                oidc.Events = new ConsoleSignInEvents(options.RequireMfa);
            });

        builder.Services.AddAuthorizationBuilder().AddPolicy(ConsoleClient.Policy, policy => policy
            .AddAuthenticationSchemes(ConsoleClient.CookieScheme)
            .RequireAuthenticatedUser());
        builder.Services.Configure<Microsoft.AspNetCore.Mvc.RazorPages.RazorPagesOptions>(pages =>
        {
            pages.Conventions.AuthorizeAreaFolder(ConsoleClient.Area, "/", ConsoleClient.Policy);
            pages.Conventions.AllowAnonymousToAreaPage(ConsoleClient.Area, "/Status");
            pages.Conventions.AllowAnonymousToAreaPage(ConsoleClient.Area, "/SignedOut");
            pages.Conventions.AllowAnonymousToAreaPage(ConsoleClient.Area, "/SignIn");
        });
        return builder;
    }

    /// <summary>
    /// The console's refusals and errors (400, 403, 404) as pages of the console, not bare status codes: the status page
    /// re-executes with the same method, and reads no form.
    /// </summary>
    public static WebApplication UseAdminConsoleStatusPages(this WebApplication app)
    {
        app.UseWhen(
            context => ConsoleClient.IsConsolePath(context.Request.Path),
            branch => branch.UseStatusCodePagesWithReExecute(ConsoleClient.BasePath + "/status/{0}"));
        return app;
    }
}

/// <summary>Console settings (<c>Console:</c>).</summary>
public sealed class AdminConsoleOptions
{
    public const string SectionName = "Console";

    /// <summary>Every console session needs a second factor (the sign-in asks for it, enrolment first); default true.</summary>
    public bool RequireMfa { get; set; } = true;

    /// <summary>A console session unused this long ends (1 minute to 1 day).</summary>
    [System.ComponentModel.DataAnnotations.Range(typeof(TimeSpan), "00:01:00", "1.00:00:00")]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(30);
}

/// <summary>Asks every sign-in for a second factor (step-up, OpenID Connect Core §3.1.2.1) and checks the ID token says so.</summary>
internal sealed class ConsoleSignInEvents(bool requireMfa) : OpenIdConnectEvents
{
    public override Task RedirectToIdentityProvider(RedirectContext context)
    {
        if (requireMfa)
        {
            context.ProtocolMessage.AcrValues = SessionClaims.AcrMultiFactor;
        }

        return Task.CompletedTask;
    }

    public override async Task TokenValidated(TokenValidatedContext context)
    {
        // The ID token's acr (OpenID Connect Core §2): a session without a second factor is sent to enrol one, not let in.
        if (requireMfa && context.Principal?.FindFirst(SessionClaims.ContextClass)?.Value != SessionClaims.AcrMultiFactor)
        {
            context.HandleResponse();
            context.Response.Redirect("/Account/Totp?ReturnUrl=" + Uri.EscapeDataString(ConsoleClient.BasePath));
            return;
        }

        // The user's security stamp now: a later "revoke sessions", disable or password change ends this session too.
        var subject = context.Principal?.FindFirst("sub")?.Value;
        var db = context.HttpContext.RequestServices.GetRequiredService<Identity.Core.Data.AuthorityDbContext>();
        var stamp = await ConsoleSession.StampAsync(db, subject, context.HttpContext.RequestAborted);
        if (stamp is not null && context.Principal?.Identity is System.Security.Claims.ClaimsIdentity identity)
        {
            identity.AddClaim(new System.Security.Claims.Claim(ConsoleSession.StampClaim, stamp));
        }

        // The ID token is kept for RP-initiated logout's id_token_hint, nothing else from the token response.
        if (context.TokenEndpointResponse?.IdToken is { } idToken)
        {
            context.Properties!.StoreTokens([new AuthenticationToken { Name = "id_token", Value = idToken }]);
        }
    }

    public override Task RemoteFailure(RemoteFailureContext context)
    {
        // An error from the authorization endpoint (access_denied, a stale correlation cookie): a console page says so.
        context.HandleResponse();
        context.Response.Redirect(ConsoleClient.BasePath + "/status/400");
        return Task.CompletedTask;
    }
}
