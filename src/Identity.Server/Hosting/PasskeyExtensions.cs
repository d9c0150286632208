using Identity.Server.Account.Mfa;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Identity.Server.Hosting;

public static class PasskeyExtensions
{
    /// <summary>
    /// Passkeys (WebAuthn) through ASP.NET Core Identity's own handler, which <c>AddSignInManager</c> registers:
    /// the relying party from the validated <c>Passkeys</c> section; the credentials in <c>AspNetUserPasskeys</c>.
    /// </summary>
    public static IHostApplicationBuilder AddPasskeys(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<PasskeyOptions>()
            .BindConfiguration(PasskeyOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<IPostConfigureOptions<PasskeyOptions>, PasskeyDefaults>();
        builder.Services.AddSingleton<IValidateOptions<PasskeyOptions>, PasskeyOptionsValidator>();
        builder.Services.AddSingleton<IConfigureOptions<IdentityPasskeyOptions>, IdentityPasskeySetup>();
        return builder;
    }
}
