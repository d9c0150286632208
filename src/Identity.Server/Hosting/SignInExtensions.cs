using System.Security.Cryptography;
using System.Text;
using Identity.Server.Account;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace Identity.Server.Hosting;

public static class SignInExtensions
{
    /// <summary>The person-facing side: SSO session cookie, Razor pages, code and refresh-token redemption, userinfo.</summary>
    public static IHostApplicationBuilder AddSignIn(this IHostApplicationBuilder builder)
    {
        // The former server-wide leeway (10 s by default) let a replayed refresh token fork the chain undetected; a
        // configuration still setting it is refused rather than silently ignored.
        var formerLeeway = $"{SsoSessionOptions.SectionName}:RefreshTokenReuseLeeway";
        builder.Services.AddOptions<SsoSessionOptions>()
            .BindConfiguration(SsoSessionOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate(_ => builder.Configuration[formerLeeway] is null,
                $"{formerLeeway} is no longer read: refresh tokens have no reuse leeway unless a confidential client is given " +
                "one (Oidc:Clients:N:RefreshTokenReuseLeeway). Remove the setting.")
            .ValidateOnStart();
        var options = builder.Configuration.GetSection(SsoSessionOptions.SectionName).Get<SsoSessionOptions>() ?? new SsoSessionOptions();
        var insecureHttp = builder.Configuration.GetValue<bool>($"{OidcOptions.SectionName}:{nameof(OidcOptions.AllowInsecureHttp)}");

        builder.Services.AddAuthentication(IdentityConstants.ApplicationScheme).AddIdentityCookies();
        builder.Services.ConfigureApplicationCookie(cookie =>
        {
            cookie.LoginPath = "/Account/Login";
            cookie.Cookie.Name = "identity.session";
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Lax; // sent on the top-level redirects of the OIDC flows
            cookie.Cookie.SecurePolicy = insecureHttp ? CookieSecurePolicy.SameAsRequest : CookieSecurePolicy.Always;
            cookie.ExpireTimeSpan = options.SessionLifetime; // the server's upper bound; the account's policy may end it sooner
            cookie.SlidingExpiration = true;

            // Signing in on the login path, the handler would redirect to the ReturnUrl query parameter by itself, as it
            // came: non-ASCII there is refused by Kestrel in a Location header (500, no session). The pages answer with
            // their own redirect, to a local URL encoded for the header (Account/ReturnUrls).
            cookie.Events.OnRedirectToReturnUrl = _ => Task.CompletedTask;

            // Identity's security stamp check, then the account's session lifetime and idle timeout.
            var validateStamp = cookie.Events.OnValidatePrincipal;
            cookie.Events.OnValidatePrincipal = async context =>
            {
                await validateStamp(context);
                await AccountSessions.ValidateAsync(context);
            };
        });

        // A revoked session (new security stamp: disable, revoke sessions, reset MFA) ends within a minute on every
        // page; the authorization endpoint re-checks the user on every request anyway.
        // The principal rebuilt after a stamp check keeps the sign-in's own claims (sid, auth_time, amr, acr): without
        // them a session would lose its MFA level, and its age for max_age and the account's session lifetime.
        builder.Services.Configure<SecurityStampValidatorOptions>(o =>
        {
            o.ValidationInterval = TimeSpan.FromMinutes(1);
            o.OnRefreshingPrincipal = context =>
            {
                if (context.NewPrincipal?.Identity is System.Security.Claims.ClaimsIdentity identity)
                {
                    identity.AddClaims(SessionClaims.Of(context.CurrentPrincipal)); // cloned into the new identity
                }

                return Task.CompletedTask;
            };
        });
        builder.Services.AddScoped<UserPrincipalFactory>();
        builder.Services.AddScoped<AccountPolicies>();
        builder.Services.AddScoped<DemoUserSeeder>();
        builder.Services.AddScoped<Account.Mfa.SecondFactors>();
        builder.Services.AddRazorPages(pages => pages.RootDirectory = "/Account")
            .AddMvcOptions(mvc =>
            {
                // No page posts jQuery-style keys (a[b]); their normalizer throws ArgumentException on a key with an
                // unclosed '[' (a form field named "scope[x"), which became a 500 on every page with a form.
                mvc.ValueProviderFactories.RemoveType<JQueryFormValueProviderFactory>();
                mvc.ValueProviderFactories.RemoveType<JQueryQueryStringValueProviderFactory>();
            });

        builder.Services.AddOpenIddict().AddServer(server =>
        {
            // OpenIddict's leeway is one for all clients: set to the longest a client may have, and each client is held
            // to its own (none by default) by RefreshTokenReuse, which runs first (Connect/ProtocolPipeline).
            server.SetRefreshTokenReuseLeeway(RefreshTokenReuse.MaxLeeway);
            // Errors that cannot go back to the client (unknown client_id, unregistered redirect_uri) are rendered
            // by the status-code pages below, at Identity (RFC 6749 §4.1.2.1).
            server.UseAspNetCore().EnableStatusCodePagesIntegration();
        });

        return builder;
    }

    public static WebApplication UseSignIn(this WebApplication app)
    {
        app.UseMiddleware<SecurityHeaders>();
        if (!app.Environment.IsDevelopment())
        {
            app.UseHsts();
        }

        app.UseStaticFiles();
        app.UseWhen(
            context => context.Request.Path.StartsWithSegments("/connect/authorize") || context.Request.Path.StartsWithSegments("/connect/endsession"),
            branch => branch.UseStatusCodePagesWithReExecute("/Error"));
        app.UseAdminConsoleStatusPages();

        // Routing after the status-code pages, so that re-executing "/Error" selects the error page's endpoint.
        app.UseRouting();
        return app;
    }

    public static WebApplication MapSignIn(this WebApplication app)
    {
        app.MapRazorPages();

        app.MapUserinfo();

        return app;
    }
}

/// <summary>
/// Security headers on every response: no framing (clickjacking), no inline script except OpenIddict's
/// form_post auto-submit (allowed by its hash), no referrer leaking authorization parameters.
/// </summary>
public sealed class SecurityHeaders(RequestDelegate next)
{
    /// <summary>The one inline script Identity serves: OpenIddict's form_post page submitting itself.</summary>
    public static readonly string FormPostScriptHash =
        "'sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes("document.form.submit();"))) + "'";

    private static readonly string Policy =
        $"default-src 'self'; script-src 'self' {FormPostScriptHash}; style-src 'self'; img-src 'self' data:; " +
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

    public Task InvokeAsync(HttpContext context)
    {
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = Policy;
        headers.XFrameOptions = "DENY";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        return next(context);
    }
}
