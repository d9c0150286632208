using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Migrations.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class SigningKeyRotation : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "ActivatesAt",
                table: "SigningKeys",
                type: "INTEGER",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "ActivatesAt",
                table: "SigningKeys");
        }
    }
}
