using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace Identity.RegionSample.SignIn;

public static class SignInExtensions
{
    /// <summary>
    /// A local cookie session, opened by the stock OpenID Connect handler against Identity: authorization code
    /// with PKCE, tokens kept in the cookie (the ID token is the <c>id_token_hint</c> of RP-initiated logout).
    /// </summary>
    public static IHostApplicationBuilder AddRegionSignIn(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<RegionSignInOptions>()
            .BindConfiguration(RegionSignInOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<RegionSignInOptions>, RegionSignInOptionsValidator>();

        builder.Services.AddAuthentication(options =>
            {
                options.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
                options.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
            })
            .AddCookie()
            .AddOpenIdConnect();
        builder.Services.AddAuthorization();
        builder.Services.AddAntiforgery();

        // The settings come from the validated options, read when the handlers are first built.
        builder.Services.AddOptions<CookieAuthenticationOptions>(CookieAuthenticationDefaults.AuthenticationScheme)
            .Configure<IOptions<RegionSignInOptions>>((cookie, region) =>
            {
                cookie.Cookie.Name = region.Value.CookieName;
                cookie.Cookie.HttpOnly = true;
                cookie.Cookie.SameSite = SameSiteMode.Lax;
                cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            });

        builder.Services.AddOptions<AntiforgeryOptions>()
            .Configure<IOptions<RegionSignInOptions>>((antiforgery, region) => antiforgery.Cookie.Name = region.Value.CookieName + ".af");

        builder.Services.AddOptions<OpenIdConnectOptions>(OpenIdConnectDefaults.AuthenticationScheme)
            .Configure<IOptions<RegionSignInOptions>>((oidc, region) => Configure(oidc, region.Value));

        return builder;
    }

    private static void Configure(OpenIdConnectOptions oidc, RegionSignInOptions region)
    {
        oidc.Authority = region.Authority!.AbsoluteUri;
        oidc.RequireHttpsMetadata = !region.IsLoopbackHttp;
        oidc.ClientId = region.ClientId;
        oidc.ClientSecret = region.ClientSecret;

        oidc.ResponseType = OpenIdConnectResponseType.Code;
        oidc.ResponseMode = OpenIdConnectResponseMode.Query;
        oidc.UsePkce = true;
        oidc.SaveTokens = true;
        oidc.GetClaimsFromUserInfoEndpoint = true;
        oidc.MapInboundClaims = false;
        oidc.TokenValidationParameters.NameClaimType = "name";
        oidc.Scope.Clear();
        oidc.Scope.Add("openid");
        oidc.Scope.Add("profile");
        oidc.Scope.Add("email");

        oidc.CallbackPath = "/signin-oidc";
        oidc.SignedOutCallbackPath = "/signout-callback-oidc";

        // The code comes back on a top-level GET (response_mode=query), where SameSite=Lax cookies are sent.
        // The handler's defaults (SameSite=None, always Secure) assume https; these follow the request's scheme.
        oidc.CorrelationCookie.Name = region.CookieName + ".correlation.";
        oidc.NonceCookie.Name = region.CookieName + ".nonce.";
        foreach (var cookie in new[] { oidc.CorrelationCookie, oidc.NonceCookie })
        {
            cookie.SameSite = SameSiteMode.Lax;
            cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        }

        // A refused consent or a protocol error lands on the home page instead of an exception page.
        oidc.Events.OnRemoteFailure = context =>
        {
            context.Response.Redirect("/?signin=failed");
            context.HandleResponse();
            return Task.CompletedTask;
        };
    }
}
